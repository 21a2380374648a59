"""Contracts with price overrides that change charges, and the pricing-plan lifecycle."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from sandbox_helpers import PK, new_customer, usage

from drip_mcp.sandbox import Sandbox

pytestmark = pytest.mark.anyio


async def _contract(client: httpx2.AsyncClient, customer_id: str, **terms: object) -> dict:
    body = {"customerId": customer_id, "name": "Enterprise", "startDate": "2026-01-01", **terms}
    response = await client.post("/v1/contracts", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_contract_override_changes_the_charged_amount(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client, "acme")
    other_id = await new_customer(client, "other")
    contract = await _contract(client, customer_id, metadata={"deal": "q1"})
    assert contract["status"] == "ACTIVE"
    assert contract["startDate"] == "2026-01-01T00:00:00.000Z"
    added = await client.post(
        f"/v1/contracts/{contract['id']}/overrides", json={"unitType": "api_calls", "unitPriceUsd": "0.0005"}
    )
    assert added.status_code == 201, added.text
    assert added.json()["unitPriceUsdc"] == "0.0005"
    charged = (await client.post("/v1/usage", json=usage(customer_id, "c1", quantity=10))).json()
    assert charged["charge"]["amountUsdc"] == "0.005000"  # 10 x 0.0005, not the plan's 0.001
    queued = (await client.post("/v1/usage/async", json=usage(customer_id, "c2", quantity=10))).json()
    assert queued["charge"]["amountUsdc"] == "0.005000"
    untouched = (await client.post("/v1/usage", json=usage(other_id, "o1", quantity=10))).json()
    assert untouched["charge"]["amountUsdc"] == "0.010000"
    estimate = await client.post(
        "/v1/cost-estimate/from-usage",
        json={"customerId": customer_id, "periodStart": "2026-01-01T00:00:00Z", "periodEnd": "2099-01-01T00:00:00Z"},
    )
    [line] = estimate.json()["lineItems"]
    assert line["unitPrice"] == "0.0005"
    got = (await client.get(f"/v1/contracts/{contract['id']}")).json()
    assert got["overrides"] == [{"unitType": "api_calls", "unitPriceUsdc": "0.0005"}]
    removed = await client.delete(f"/v1/contracts/{contract['id']}/overrides/api_calls")
    assert removed.json() == {"success": True}
    assert (await client.post("/v1/usage", json=usage(customer_id, "c3", quantity=10))).json()["charge"][
        "amountUsdc"
    ] == "0.010000"


async def test_cancelled_or_future_contracts_do_not_price_charges(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    future = await _contract(client, customer_id, startDate="2099-01-01T00:00:00Z")
    await client.post(f"/v1/contracts/{future['id']}/overrides", json={"unitType": "api_calls", "unitPriceUsd": 0})
    current = await _contract(client, customer_id, name="Now")
    await client.post(f"/v1/contracts/{current['id']}/overrides", json={"unitType": "api_calls", "unitPriceUsd": 0.002})
    assert (await client.post("/v1/usage", json=usage(customer_id, "a"))).json()["charge"]["amountUsdc"] == "0.002000"
    cancelled = (await client.delete(f"/v1/contracts/{current['id']}")).json()
    assert cancelled["status"] == "CANCELLED"
    assert (await client.post("/v1/usage", json=usage(customer_id, "b"))).json()["charge"]["amountUsdc"] == "0.001000"
    refused = await client.post(
        f"/v1/contracts/{current['id']}/overrides", json={"unitType": "tokens", "unitPriceUsd": "0.1"}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "CONTRACT_NOT_ACTIVE"


async def test_contract_list_filters_patch_and_secret_key(client: httpx2.AsyncClient) -> None:
    a = await new_customer(client, "a")
    b = await new_customer(client, "b")
    first = await _contract(client, a)
    await _contract(client, b)
    listed = (await client.get("/v1/contracts", params={"customerId": a})).json()
    assert [c["id"] for c in listed["contracts"]] == [first["id"]]
    patched = await client.patch(f"/v1/contracts/{first['id']}", json={"name": "Renamed", "discountPct": 10})
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["discountPct"] == 10
    assert (await client.patch(f"/v1/contracts/{first['id']}", json={"status": "CANCELLED"})).json()["status"] == (
        "CANCELLED"
    )
    assert len((await client.get("/v1/contracts", params={"status": "ACTIVE"})).json()["contracts"]) == 1
    public = await client.get("/v1/contracts", headers=PK)
    assert public.status_code == 403
    assert public.json()["code"] == "PUBLIC_KEY_NOT_ALLOWED"
    invalid = await client.post("/v1/contracts", json={"customerId": a, "startDate": "soon"})
    assert invalid.status_code == 422
    assert {d["path"] for d in invalid.json()["details"]} == {"name", "startDate"}
    assert (
        await client.post("/v1/contracts", json={"customerId": "nope", "name": "x", "startDate": "2026-01-01"})
    ).status_code == 404


async def test_price_change_creates_a_version_and_reprices_new_charges(client: httpx2.AsyncClient) -> None:
    plans = (await client.get("/v1/pricing-plans")).json()["data"]
    plan = next(p for p in plans if p["unitType"] == "api_calls")
    by_type = (await client.get("/v1/pricing-plans/by-type/api_calls")).json()
    assert by_type["id"] == plan["id"]
    assert by_type["version"] == 1
    customer_id = await new_customer(client)
    before = (await client.post("/v1/usage", json=usage(customer_id, "v1", quantity=10))).json()["charge"]
    patched = await client.patch(f"/v1/pricing-plans/{plan['id']}", json={"unitPriceUsd": 0.002, "name": "Calls"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["unitPriceUsd"] == "0.002"
    assert patched.json()["version"] == 2
    versions = (await client.get(f"/v1/pricing-plans/{plan['id']}/versions")).json()
    assert [(v["version"], v["unitPriceUsd"]) for v in versions["data"]] == [(1, "0.001"), (2, "0.002")]
    assert versions["data"][0]["effectiveTo"] == versions["data"][1]["effectiveFrom"]
    renamed = await client.patch(f"/v1/pricing-plans/{plan['id']}", json={"name": "API calls"})
    assert renamed.json()["version"] == 2  # no price change, no new version
    after = (await client.post("/v1/usage", json=usage(customer_id, "v2", quantity=10))).json()["charge"]
    assert (before["amountUsdc"], after["amountUsdc"]) == ("0.010000", "0.020000")
    assert (await client.get(f"/v1/charges/{before['id']}")).json()["amountUsdc"] == "0.010000"


async def test_one_active_plan_per_unit_type_and_soft_delete(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    plan = (await client.get("/v1/pricing-plans/by-type/tokens")).json()
    duplicate = await client.post("/v1/pricing-plans", json={"name": "T2", "unitType": "tokens", "unitPriceUsd": 1})
    assert duplicate.status_code == 409
    assert duplicate.json()["existingPlanId"] == plan["id"]
    deleted = await client.delete(f"/v1/pricing-plans/{plan['id']}")
    assert deleted.json()["isActive"] is False
    missing = await client.get("/v1/pricing-plans/by-type/tokens")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"
    assert (await client.get(f"/v1/pricing-plans/{plan['id']}")).json()["isActive"] is False
    replacement = await client.post("/v1/pricing-plans", json={"name": "T2", "unitType": "tokens", "unitPriceUsd": 1})
    assert replacement.status_code == 201
    reactivate = await client.patch(f"/v1/pricing-plans/{plan['id']}", json={"isActive": True})
    assert reactivate.status_code == 409
    assert reactivate.json()["code"] == "DUPLICATE_PRICING_PLAN"
    assert reactivate.json()["existingPlanId"] == replacement.json()["id"]
    public = await client.patch(f"/v1/pricing-plans/{plan['id']}", json={"name": "x"}, headers=PK)
    assert public.status_code == 403
    assert (await client.get(f"/v1/pricing-plans/{plan['id']}", headers=PK)).status_code == 200
    assert (await client.get("/v1/pricing-plans/nope")).status_code == 404
    assert sandbox.store.unit_prices()["tokens"] == Decimal(1)
