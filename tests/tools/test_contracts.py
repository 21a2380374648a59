"""The contracts toolset end to end, on both surfaces: contracts, and price overrides that change later charges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_fixtures import MODES, PK, Harness, open_harness

from drip_mcp.tools import OPERATIONS

pytestmark = pytest.mark.anyio

SURFACES = ("full", "core")
CONTRACT_OPS = [t.name for t in OPERATIONS if t.toolset == "contracts"]


@pytest.fixture(params=[(m, s) for m in MODES for s in SURFACES], ids=lambda p: f"{p[0]}-{p[1]}")
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    mode, surface = request.param
    async with open_harness(tmp_path, mode, surface=surface) as harness:
        yield harness


async def new_contract(h: Harness, customer: str, **extra: object) -> str:
    args = {"customer_id": customer, "name": "Enterprise", "start_date": "2020-01-01", **extra}
    contract_id: str = (await h.op_ok("drip_create_contract", args))["id"]
    return contract_id


async def charge_usdc(h: Harness, customer: str) -> str:
    out = await h.op_ok("drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 3})
    amount: str = out["amount_usdc"]
    return amount


async def test_a_price_override_changes_what_later_charges_cost_until_removed(h: Harness) -> None:
    customer = await h.new_customer("contract-user")
    other = await h.new_customer("other-user")
    assert await charge_usdc(h, customer) == "0.003000"  # the pricing plan: 0.001 per call
    contract = await new_contract(h, customer)

    override = await h.op_ok(
        "drip_add_contract_override", {"contract_id": contract, "unit_type": "api_calls", "unit_price_usd": 0.01}
    )
    assert (override["unit_type"], override["contract_id"]) == ("api_calls", contract)
    assert await charge_usdc(h, customer) == "0.030000"
    assert await charge_usdc(h, other) == "0.003000"  # only this customer's charges
    got = await h.op_ok("drip_get_contract", {"contract_id": contract})
    assert [o["unit_type"] for o in got["overrides"]] == ["api_calls"]

    removed = await h.op_ok("drip_remove_contract_override", {"contract_id": contract, "unit_type": "api_calls"})
    assert removed["success"] is True
    assert await charge_usdc(h, customer) == "0.003000"


async def test_a_cancelled_contracts_overrides_stop_applying(h: Harness) -> None:
    customer = await h.new_customer("cancel-user")
    contract = await new_contract(h, customer)
    await h.op_ok(
        "drip_add_contract_override", {"contract_id": contract, "unit_type": "api_calls", "unit_price_usd": 1}
    )
    assert await charge_usdc(h, customer) == "3.000000"

    deleted = await h.op_ok("drip_delete_contract", {"contract_id": contract})
    assert deleted["status"] == "CANCELLED"
    assert await charge_usdc(h, customer) == "0.003000"
    error = await h.op_error(
        "drip_add_contract_override",
        {"contract_id": contract, "unit_type": "api_calls", "unit_price_usd": 1},
        "CONTRACT_NOT_ACTIVE",
    )
    assert error["status"] == 409


async def test_contract_terms_are_created_listed_and_updated(h: Harness) -> None:
    customer = await h.new_customer("terms-user")
    contract = await new_contract(
        h,
        customer,
        end_date="2099-12-31",
        minimum_usdc=100,
        discount_pct=12.5,
        prepaid_rollover=True,
        included_units=[{"unit_type": "api_calls", "units": 1000}, {"unit_type": "tokens", "units": 50}],
        metadata={"model": "gpt-x"},
    )
    [sent] = h.sent_to("POST", "/v1/contracts")
    assert sent.body["includedUnits"] == {"api_calls": 1000, "tokens": 50}
    assert (sent.body["startDate"], sent.body["minimumUsdc"]) == ("2020-01-01", 100)

    got = await h.op_ok("drip_get_contract", {"contract_id": contract})
    assert got["included_units"] == {"api_calls": 1000, "tokens": 50}
    assert (got["status"], got["discount_pct"], got["prepaid_rollover"]) == ("ACTIVE", 12.5, True)
    assert got["start_date"].startswith("2020-01-01")
    assert [c["id"] for c in (await h.op_ok("drip_list_contracts", {"customer_id": customer}))["contracts"]] == [
        contract
    ]

    updated = await h.op_ok("drip_update_contract", {"contract_id": contract, "name": "Renewed", "maximum_usdc": 500})
    assert (updated["name"], updated["maximum_usdc"]) == ("Renewed", "500")
    expired = await h.op_ok("drip_update_contract", {"contract_id": contract, "status": "EXPIRED"})
    assert expired["status"] == "EXPIRED"
    assert (await h.op_ok("drip_list_contracts", {"status": "ACTIVE"}))["contracts"] == []


async def test_bad_contract_dates_and_discounts_are_refused_before_sending(h: Harness) -> None:
    base = {"customer_id": "c", "name": "x"}
    await h.op_error("drip_create_contract", {**base, "start_date": "next monday"}, "VALIDATION_ERROR")
    await h.op_error(
        "drip_create_contract", {**base, "start_date": "2026-01-01", "discount_pct": 101}, "VALIDATION_ERROR"
    )
    await h.op_error(
        "drip_add_contract_override",
        {"contract_id": "x", "unit_type": "api_calls", "unit_price_usd": 0.0000001},
        "VALIDATION_ERROR",
    )
    assert h.sent == []


async def test_an_unknown_contract_is_not_found(h: Harness) -> None:
    await h.op_error("drip_get_contract", {"contract_id": "ctr_missing"}, "NOT_FOUND")


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("name", CONTRACT_OPS)
async def test_contract_operations_refuse_a_public_key_without_a_request(
    tmp_path: Path, surface: str, name: str
) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        error = await h.op_error(name, {"contract_id": "ctr_x"}, "PUBLIC_KEY_NOT_ALLOWED")
        assert error["status"] == 403
        assert h.sent == []
