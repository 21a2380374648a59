"""The customers toolset end to end: create, get, list, update, provisioning and spending caps (sandbox)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from server_fixtures import PK, SURFACES, Harness, open_harness, result_payload

pytestmark = pytest.mark.anyio


async def test_create_customer_returns_the_customer_and_echoes_the_idempotency_key(h: Harness) -> None:
    out = await h.ok(
        "drip_create_customer",
        {"external_customer_id": "user-42", "metadata": {"model": "gpt-x"}, "idempotency_key": "cus-key-42"},
    )
    assert out["idempotency_key"] == "cus-key-42"
    assert out["is_duplicate"] is False
    assert out["redacted_paths"] == []
    assert out["customer"]["external_customer_id"] == "user-42"
    assert out["customer"]["metadata"] == {"model": "gpt-x"}
    stored = h.store.customer(out["customer"]["id"])
    assert stored["external_customer_id"] == "user-42"
    [sent] = h.sent_to("POST", "/v1/customers")
    assert sent.body["idempotencyKey"] == "cus-key-42"


async def test_create_customer_without_an_identifier_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_create_customer", {"metadata": {"model": "x"}}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "external_customer_id"
    assert h.sent == []


async def test_create_customer_twice_is_a_conflict_carrying_the_existing_id(h: Harness) -> None:
    first = await h.new_customer("user-dup")
    result = await h.call("drip_create_customer", {"external_customer_id": "user-dup"})
    assert result.is_error
    error = result_payload(result)["error"]
    assert error["status"] == 409
    assert error["existing_id"] == first
    assert error["retryable"] is False
    assert "Error executing tool" not in result.content[0].text


async def test_get_customer_returns_the_created_customer(h: Harness) -> None:
    customer_id = await h.new_customer("user-get")
    out = await h.ok("drip_get_customer", {"customer_id": customer_id})
    assert out["id"] == customer_id
    assert out["external_customer_id"] == "user-get"


async def test_get_customer_unknown_id_is_not_found(h: Harness) -> None:
    error = await h.error("drip_get_customer", {"customer_id": "cus_does_not_exist"}, "NOT_FOUND")
    assert error["status"] == 404
    assert error["retryable"] is False


async def test_get_customer_id_with_a_slash_is_refused_before_sending(h: Harness) -> None:
    await h.error("drip_get_customer", {"customer_id": "../webhooks"}, "VALIDATION_ERROR")
    assert h.sent == []


async def test_list_customers_lists_newest_first(h: Harness) -> None:
    older = await h.new_customer("user-a")
    newer = await h.new_customer("user-b")
    out = await h.ok("drip_list_customers", {"limit": 10})
    assert [c["id"] for c in out["customers"]] == [newer, older]
    assert out["count"] == 2


async def test_list_customers_unknown_status_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_list_customers", {"status": "DELETED"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "status"
    assert h.sent == []


# --- update, provision, balance sync, spending caps (both surfaces: `hs`) -------------------------------------


async def test_update_customer_changes_status_and_metadata_and_never_shows_the_email(hs: Harness) -> None:
    customer_id = await hs.new_customer("user-upd")
    hs.store.update_customer(customer_id, {"email": "jane@example.com"})
    out = await hs.op_ok(
        "drip_update_customer",
        {
            "customer_id": customer_id,
            "external_customer_id": "user-upd-2",
            "status": "PAUSED",
            "metadata": {"plan": "pro", "contact": "jane@example.com"},
            "idempotency_key": "upd-1",
        },
    )
    assert (out["id"], out["status"], out["external_customer_id"]) == (customer_id, "PAUSED", "user-upd-2")
    assert out["metadata"] == {"plan": "pro", "contact": "[REDACTED]"}
    assert out["idempotency_key"] == "upd-1"
    assert "email" not in out
    assert "jane@example.com" not in json.dumps(out)
    [sent] = hs.sent_to("PATCH", f"/v1/customers/{customer_id}")
    assert sent.body == {
        "externalCustomerId": "user-upd-2",
        "status": "PAUSED",
        "metadata": {"plan": "pro", "contact": "[REDACTED]"},
        "idempotencyKey": "upd-1",
    }


async def test_update_customer_unknown_status_is_refused_before_sending(hs: Harness) -> None:
    await hs.op_error("drip_update_customer", {"customer_id": "cus_x", "status": "DELETED"}, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_update_customer_takes_no_email(hs: Harness) -> None:
    args = {"customer_id": "cus_x", "email": "jane@example.com"}
    await hs.op_error("drip_update_customer", args, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_provision_customer_deploys_once_and_reports_it_already_deployed_after(hs: Harness) -> None:
    customer_id = await hs.new_customer("user-prov")
    first = await hs.op_ok("drip_provision_customer", {"customer_id": customer_id})
    again = await hs.op_ok("drip_provision_customer", {"customer_id": customer_id})
    assert (first["already_deployed"], again["already_deployed"]) == (False, True)
    assert first["smart_account_address"].startswith("0x")
    assert first["billing_balance_usdc"] == "100.000000"
    assert "email" not in first


async def test_sync_customer_balance_returns_the_balance(hs: Harness) -> None:
    customer_id = await hs.new_customer("user-sync")
    out = await hs.op_ok("drip_sync_customer_balance", {"customer_id": customer_id})
    assert (out["customer_id"], out["new_balance"], out["changed"]) == (customer_id, "100.000000", False)
    assert hs.sent_to("POST", f"/v1/customers/{customer_id}/sync-balance")


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("name", ["drip_provision_customer", "drip_sync_customer_balance"])
async def test_provision_and_sync_with_a_public_key_are_refused_with_nothing_sent(
    tmp_path: Path, surface: str, name: str
) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        error = await h.op_error(name, {"customer_id": "cus_x"}, "PUBLIC_KEY_NOT_ALLOWED")
        assert error["status"] == 403
        assert h.sent == []


async def test_spending_cap_set_through_the_tool_refuses_the_charge_that_would_cross_it(hs: Harness) -> None:
    customer_id = await hs.new_customer("user-cap")
    cap = await hs.op_ok(
        "drip_set_customer_spending_cap",
        {"customer_id": customer_id, "cap_type": "DAILY_CHARGE_LIMIT", "limit_value": 0.005},
    )
    assert (cap["cap_type"], cap["limit_value"], cap["auto_block"], cap["is_active"]) == (
        "DAILY_CHARGE_LIMIT",
        "0.005000",
        True,
        True,
    )
    charge = {"customer_id": customer_id, "meter": "api_calls"}
    assert (await hs.op_ok("drip_charge", {**charge, "quantity": 4}))["status"] == "charged"
    refused = await hs.op_error("drip_charge", {**charge, "quantity": 2}, "SPENDING_CAP_EXCEEDED")
    assert refused["status"] == 403
    assert hs.store.balance(customer_id) == Decimal("99.996")
    listed = await hs.op_ok("drip_get_customer_spending_caps", {"customer_id": customer_id})
    assert [(c["id"], c["current_usage"]) for c in listed["caps"]] == [(cap["id"], "0.004000")]

    removed = await hs.op_ok("drip_remove_customer_spending_cap", {"customer_id": customer_id, "cap_id": cap["id"]})
    assert removed["success"] is True
    assert (await hs.op_ok("drip_get_customer_spending_caps", {"customer_id": customer_id}))["caps"] == []
    assert (await hs.op_ok("drip_charge", {**charge, "quantity": 2}))["status"] == "charged"
    await hs.op_error(
        "drip_remove_customer_spending_cap", {"customer_id": customer_id, "cap_id": cap["id"]}, "NOT_FOUND"
    )


async def test_spending_cap_works_with_a_public_key(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=PK) as h:
        customer_id = await h.new_customer("user-cap-pk")
        args = {"customer_id": customer_id, "cap_type": "SINGLE_CHARGE_LIMIT", "limit_value": 1, "auto_block": False}
        out = await h.ok("drip_set_customer_spending_cap", args)
        assert (out["cap_type"], out["auto_block"]) == ("SINGLE_CHARGE_LIMIT", False)


@pytest.mark.parametrize("limit", [0, -1, "5"])
async def test_spending_cap_limit_must_be_a_positive_number(hs: Harness, limit: object) -> None:
    args = {"customer_id": "cus_x", "cap_type": "DAILY_CHARGE_LIMIT", "limit_value": limit}
    await hs.op_error("drip_set_customer_spending_cap", args, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_create_customer_is_internal_reaches_drip_and_is_stored(h: Harness) -> None:
    out = await h.ok("drip_create_customer", {"external_customer_id": "staff-1", "is_internal": True})
    [sent] = h.sent_to("POST", "/v1/customers")
    assert sent.body["isInternal"] is True
    assert out["customer"]["is_internal"] is True
    read = await h.ok("drip_get_customer", {"customer_id": out["customer"]["id"]})
    assert read["is_internal"] is True
    await h.ok("drip_create_customer", {"external_customer_id": "user-2"})
    assert "isInternal" not in h.sent_to("POST", "/v1/customers")[-1].body  # Drip's default (false) applies
