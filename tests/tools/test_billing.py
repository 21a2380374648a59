"""The billing toolsets end to end: charges, balances, charge history and checkout against the sandbox."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from server_fixtures import Harness

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
