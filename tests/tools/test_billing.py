"""The billing toolsets end to end: charges, balances, charge history and checkout against the sandbox."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import PK, SURFACES, Harness, open_harness

pytestmark = pytest.mark.anyio


async def test_charge_draws_the_balance_down_by_exactly_the_amount(h: Harness) -> None:
    customer_id = await h.new_customer()
    assert (await h.ok("drip_get_balance", {"customer_id": customer_id}))["balance_usdc"] == "100.000000"
    out = await h.ok(
        "drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3, "idempotency_key": "c-1"}
    )
    assert out["status"] == "charged"
    assert out["amount_usdc"] == "0.003000"
    assert out["charge_status"] == "CONFIRMED"
    assert out["charge_id"]
    assert out["usage_event_id"]
    assert out["idempotency_key"] == "c-1"
    assert out["is_duplicate"] is False
    balance = await h.ok("drip_get_balance", {"customer_id": customer_id})
    assert balance["balance_usdc"] == "99.997000"
    assert balance["available_usdc"] == "99.997000"
    assert h.store.count_charges(customer_id) == 1
    [sent] = h.sent_to("POST", "/v1/usage")
    assert sent.body == {"customerId": customer_id, "usageType": "api_calls", "quantity": 3, "idempotencyKey": "c-1"}


async def test_charge_same_idempotency_key_twice_charges_once(h: Harness) -> None:
    customer_id = await h.new_customer()
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 5, "idempotency_key": "charge-once"}
    first = await h.ok("drip_charge", args)
    second = await h.ok("drip_charge", args)
    assert (first["is_duplicate"], second["is_duplicate"]) == (False, True)
    assert second["charge_id"] == first["charge_id"]
    assert second["idempotency_key"] == "charge-once"
    assert h.store.count_charges(customer_id) == 1
    assert h.store.balance(customer_id) == Decimal("99.995")


async def test_charge_dry_run_previews_and_leaves_the_balance_unchanged(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3, "dry_run": True})
    assert out["status"] == "preview"
    assert out["amount_usdc"] == "0.003000"
    assert out["balance_before_usdc"] == "100.000000"
    assert out["balance_after_usdc"] == "99.997000"
    assert out["charge_id"] is None
    assert out["idempotency_key"]
    assert h.sent_to("POST", "/v1/usage") == []
    assert h.store.count_charges(customer_id) == 0
    assert h.store.balance(customer_id) == Decimal("100")


async def test_charge_beyond_the_balance_is_payment_required_and_not_retryable(h: Harness) -> None:
    customer_id = await h.new_customer()
    error = await h.error(
        "drip_charge",
        {"customer_id": customer_id, "meter": "api_calls", "quantity": 200_000, "idempotency_key": "too-much"},
        "PAYMENT_REQUIRED",
    )
    assert error["status"] == 402
    assert error["retryable"] is False
    assert error["idempotency_key"] == "too-much"
    assert error["hint"]
    assert h.store.balance(customer_id) == Decimal("100")
    assert h.store.count_charges(customer_id) == 0


async def test_charge_unknown_meter_is_not_found(h: Harness) -> None:
    customer_id = await h.new_customer()
    error = await h.error(
        "drip_charge", {"customer_id": customer_id, "meter": "no_such_meter", "quantity": 1}, "NOT_FOUND"
    )
    assert error["status"] == 404
    assert h.store.balance(customer_id) == Decimal("100")


async def test_charge_unknown_customer_is_not_found(h: Harness) -> None:
    await h.error("drip_charge", {"customer_id": "cus_missing", "meter": "api_calls", "quantity": 1}, "NOT_FOUND")


@pytest.mark.parametrize("quantity", [0, -1, float("nan")])
async def test_charge_bad_quantity_is_refused_before_any_money_moves(h: Harness, quantity: Any) -> None:
    error = await h.error(
        "drip_charge", {"customer_id": "cus_x", "meter": "api_calls", "quantity": quantity}, "VALIDATION_ERROR"
    )
    assert [d["path"] for d in error["details"]] == ["quantity"]
    assert h.sent == []


async def test_get_balance_unknown_customer_is_not_found(h: Harness) -> None:
    await h.error("drip_get_balance", {"customer_id": "cus_missing"}, "NOT_FOUND")


async def test_get_charge_returns_the_charge(h: Harness) -> None:
    customer_id = await h.new_customer()
    charged = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 7})
    out = await h.ok("drip_get_charge", {"charge_id": charged["charge_id"]})
    assert out["id"] == charged["charge_id"]
    assert out["customer_id"] == customer_id
    assert out["amount_usdc"] == "0.007000"
    assert out["status"] == "CONFIRMED"


async def test_get_charge_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_get_charge", {"charge_id": "chg_missing"}, "NOT_FOUND")


async def test_list_charges_filters_by_customer(h: Harness) -> None:
    mine = await h.new_customer("user-mine")
    other = await h.new_customer("user-other")
    await h.ok("drip_charge", {"customer_id": mine, "meter": "api_calls", "quantity": 1})
    await h.ok("drip_charge", {"customer_id": other, "meter": "api_calls", "quantity": 2})
    out = await h.ok("drip_list_charges", {"customer_id": mine, "status": "CONFIRMED"})
    assert [c["customer_id"] for c in out["charges"]] == [mine]
    assert out["charges"][0]["amount_usdc"] == "0.001000"


async def test_list_charges_unknown_status_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_list_charges", {"status": "SETTLED"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "status"
    assert h.sent == []


async def test_checkout_returns_a_hosted_page_url(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok(
        "drip_checkout",
        {
            "amount_cents": 2500,
            "return_url": "https://example.com/done",
            "customer_id": customer_id,
            "idempotency_key": "co-1",
        },
    )
    assert out["checkout_id"]
    assert out["url"].startswith("http")
    assert out["checkout_id"] in out["url"]
    assert Decimal(out["amount_usd"]) == Decimal("25")
    assert out["idempotency_key"] == "co-1"


async def test_checkout_below_the_minimum_amount_is_refused_before_sending(h: Harness) -> None:
    error = await h.error(
        "drip_checkout",
        {"amount_cents": 499, "return_url": "https://example.com/done", "customer_id": "cus_x"},
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["path"] == "amount_cents"
    assert h.sent == []


async def test_checkout_without_a_customer_is_refused_before_sending(h: Harness) -> None:
    error = await h.error(
        "drip_checkout", {"amount_cents": 500, "return_url": "https://example.com/done"}, "VALIDATION_ERROR"
    )
    assert error["details"][0]["path"] == "customer_id"
    assert h.sent == []


async def test_checkout_unknown_customer_is_not_found(h: Harness) -> None:
    await h.error(
        "drip_checkout",
        {"amount_cents": 500, "return_url": "https://example.com/done", "customer_id": "cus_missing"},
        "NOT_FOUND",
    )


# --- refunds and usage history (both surfaces: `hs`) ----------------------------------------------------------


async def test_refund_restores_the_balance_exactly_and_a_second_refund_is_a_conflict(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    charged = await hs.op_ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 7})
    assert hs.store.balance(customer_id) == Decimal("99.993")
    args = {"charge_id": charged["charge_id"], "reason": "merchant_error", "note": "double billed"}
    refunded = await hs.op_ok("drip_refund_charge", {**args, "idempotency_key": "rfd-1"})
    assert (refunded["id"], refunded["status"], refunded["refund_reason"]) == (
        charged["charge_id"],
        "REFUNDED",
        "merchant_error",
    )
    assert refunded["idempotency_key"] == "rfd-1"
    assert hs.store.balance(customer_id) == Decimal("100")
    balance = await hs.op_ok("drip_get_balance", {"customer_id": customer_id})
    assert balance["balance_usdc"] == "100.000000"
    again = await hs.op_error("drip_refund_charge", args, "ALREADY_REFUNDED")
    assert again["status"] == 409
    assert hs.store.balance(customer_id) == Decimal("100")


async def test_refund_unknown_reason_is_refused_before_sending(hs: Harness) -> None:
    await hs.op_error("drip_refund_charge", {"charge_id": "chg_x", "reason": "because"}, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_refund_works_with_a_public_key(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=PK) as h:
        customer_id = await h.new_customer()
        charged = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
        out = await h.ok("drip_refund_charge", {"charge_id": charged["charge_id"], "reason": "customer_request"})
        assert out["status"] == "REFUNDED"


async def test_list_usage_shows_each_billable_write_with_its_charge(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    other = await hs.new_customer("user-other")
    charged = await hs.op_ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 2})
    await hs.op_ok("drip_charge", {"customer_id": other, "meter": "api_calls", "quantity": 1})
    out = await hs.op_ok("drip_list_usage", {"customer_id": customer_id})
    [usage] = out["data"]
    assert (usage["id"], usage["customer_id"], usage["usage_type"]) == (
        charged["usage_event_id"],
        customer_id,
        "api_calls",
    )
    assert usage["charge"]["id"] == charged["charge_id"]
    assert (await hs.op_ok("drip_list_usage", {"limit": 1}))["count"] == 1


# --- drip_charge_async: the same money-safety path as drip_charge ---------------------------------------------


async def test_charge_async_is_pending_then_settles_and_draws_the_balance_down(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 3, "idempotency_key": "ca-1"}
    out = await hs.op_ok("drip_charge_async", args)
    assert (out["status"], out["charge_status"], out["amount_usdc"]) == ("charged", "PENDING", "0.003000")
    assert out["idempotency_key"] == "ca-1"
    [sent] = hs.sent_to("POST", "/v1/usage/async")
    assert sent.body == {"customerId": customer_id, "usageType": "api_calls", "quantity": 3, "idempotencyKey": "ca-1"}
    assert hs.sent_to("POST", "/v1/usage") == []

    hs.store.settle_pending()  # the sandbox's background worker may have settled it already
    settled = await hs.op_ok("drip_get_charge", {"charge_id": out["charge_id"]})
    assert (settled["status"], settled["amount_usdc"]) == ("CONFIRMED", "0.003000")
    assert hs.store.balance(customer_id) == Decimal("99.997")

    replay = await hs.op_ok("drip_charge_async", args)
    assert (replay["is_duplicate"], replay["charge_id"]) == (True, out["charge_id"])
    assert hs.store.count_charges(customer_id) == 1


async def test_charge_async_dry_run_previews_and_sends_nothing(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 3, "dry_run": True}
    out = await hs.op_ok("drip_charge_async", args)
    assert (out["status"], out["amount_usdc"], out["balance_after_usdc"]) == ("preview", "0.003000", "99.997000")
    assert out["idempotency_key"].startswith("chga")
    assert hs.sent_to("POST", "/v1/usage/async") == []


@pytest.mark.parametrize("surface", SURFACES)
async def test_charge_async_above_the_per_charge_cap_is_refused_with_nothing_sent(tmp_path: Path, surface: str) -> None:
    async with open_harness(tmp_path, surface=surface, max_charge_usdc="0.005") as h:
        customer_id = await h.new_customer()
        args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 6}
        error = await h.op_error("drip_charge_async", args, "SPEND_CAP_EXCEEDED")
        assert (error["cap"], error["requested_usdc"]) == ("per_charge", "0.006000")
        assert h.sent_to("POST", "/v1/usage/async") == []
        assert h.store.count_charges(customer_id) == 0


@pytest.mark.parametrize("surface", SURFACES)
async def test_charge_async_counts_against_the_session_budget_shared_with_drip_charge(
    tmp_path: Path, surface: str
) -> None:
    async with open_harness(tmp_path, surface=surface, session_budget_usdc="0.010") as h:
        customer_id = await h.new_customer()
        charge = {"customer_id": customer_id, "meter": "api_calls"}
        assert (await h.op_ok("drip_charge_async", {**charge, "quantity": 6}))["charge_status"] == "PENDING"
        error = await h.op_error("drip_charge", {**charge, "quantity": 5}, "SPEND_CAP_EXCEEDED")
        assert error["cap"] == "session_budget"
        await h.op_error("drip_charge_async", {**charge, "quantity": 5}, "SPEND_CAP_EXCEEDED")
        assert (await h.op_ok("drip_charge_async", {**charge, "quantity": 4}))["status"] == "charged"
        assert len(h.sent_to("POST", "/v1/usage/async")) == 2
        assert h.sent_to("POST", "/v1/usage") == []
        summary = await h.op_ok("drip_session_summary", {})
    assert [e["outcome"] for e in summary["entries"]] == ["charged", "failed", "failed", "charged"]
    assert summary["budget_remaining_usdc"] == "0.000000"


async def test_charge_async_is_refused_by_a_drip_spending_cap(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    cap = {"customer_id": customer_id, "cap_type": "SINGLE_CHARGE_LIMIT", "limit_value": 0.002}
    await hs.op_ok("drip_set_customer_spending_cap", cap)
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 3}
    await hs.op_error("drip_charge_async", args, "SPENDING_CAP_EXCEEDED")
    assert hs.store.count_charges(customer_id) == 0


async def test_charge_async_needs_confirmation_and_a_drip_charge_token_does_not_unlock_it(tmp_path: Path) -> None:
    async with open_harness(tmp_path, confirm_charges=True) as h:
        customer_id = await h.new_customer()
        args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 2}
        sync_token = (await h.ok("drip_charge", args))["confirm_token"]
        await h.error("drip_charge_async", {**args, "confirm_token": sync_token}, "CONFIRMATION_MISMATCH")
        asked = await h.ok("drip_charge_async", args)
        assert (asked["status"], asked["amount_usdc"]) == ("confirmation_required", "0.002000")
        assert h.sent_to("POST", "/v1/usage/async") == []
        done = await h.ok("drip_charge_async", {**args, "confirm_token": asked["confirm_token"]})
        assert (done["status"], done["charge_status"]) == ("charged", "PENDING")
        assert done["idempotency_key"] == asked["idempotency_key"]
        assert len(h.sent_to("POST", "/v1/usage/async")) == 1


async def test_charge_async_redacts_metadata_before_sending(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    metadata = {"model": "gpt-x", "contact": "jane@example.com"}
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 1, "metadata": metadata}
    out = await hs.op_ok("drip_charge_async", args)
    assert out["redacted_paths"] == ["metadata.contact"]
    [sent] = hs.sent_to("POST", "/v1/usage/async")
    assert "jane@example.com" not in json.dumps(sent.body)
