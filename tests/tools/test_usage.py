"""The usage toolset end to end: tracking, batches, meters and estimates against the sandbox."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from server_fixtures import Harness

pytestmark = pytest.mark.anyio


async def test_track_usage_records_on_the_ledger_without_moving_money(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok(
        "drip_track_usage",
        {"customer_id": customer_id, "meter": "tokens", "quantity": 1500, "units": "tokens", "idempotency_key": "t-1"},
    )
    assert out["status"] == "recorded"
    assert out["customer_id"] == customer_id
    assert out["meter"] == "tokens"
    assert Decimal(out["quantity"]) == 1500
    assert out["usage_event_id"]
    assert out["idempotency_key"] == "t-1"
    assert out["is_duplicate"] is False
    assert h.store.count_usage_events(customer_id, kind="internal") == 1
    assert h.store.balance(customer_id) == Decimal("100")
    [sent] = h.sent_to("POST", "/v1/usage/internal")
    assert sent.body == {
        "customerId": customer_id,
        "usageType": "tokens",
        "quantity": 1500,
        "units": "tokens",
        "idempotencyKey": "t-1",
    }


async def test_track_usage_generates_and_returns_an_idempotency_key_when_omitted(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
    [sent] = h.sent_to("POST", "/v1/usage/internal")
    assert out["idempotency_key"]
    assert sent.body["idempotencyKey"] == out["idempotency_key"]


async def test_track_usage_same_idempotency_key_twice_records_once(h: Harness) -> None:
    customer_id = await h.new_customer()
    args = {"customer_id": customer_id, "meter": "api_calls", "quantity": 2, "idempotency_key": "track-once"}
    first = await h.ok("drip_track_usage", args)
    second = await h.ok("drip_track_usage", args)
    assert first["is_duplicate"] is False
    assert second["is_duplicate"] is True
    assert second["usage_event_id"] == first["usage_event_id"]
    assert second["idempotency_key"] == "track-once"
    assert h.store.count_usage_events(customer_id, kind="internal") == 1


async def test_track_usage_unknown_customer_is_not_found(h: Harness) -> None:
    error = await h.error(
        "drip_track_usage", {"customer_id": "cus_missing", "meter": "api_calls", "quantity": 1}, "NOT_FOUND"
    )
    assert error["status"] == 404
    assert error["idempotency_key"]


@pytest.mark.parametrize("quantity", [0, -1, float("nan"), float("inf"), "5", True, 10**13])
async def test_track_usage_bad_quantity_is_refused_naming_the_field_before_sending(h: Harness, quantity: Any) -> None:
    error = await h.error(
        "drip_track_usage", {"customer_id": "cus_x", "meter": "api_calls", "quantity": quantity}, "VALIDATION_ERROR"
    )
    assert [d["path"] for d in error["details"]] == ["quantity"]
    assert "quantity" in error["message"]
    assert error["status"] == 422
    assert error["retryable"] is False
    assert h.sent == []


async def test_track_usage_missing_meter_is_refused_naming_the_field(h: Harness) -> None:
    error = await h.error("drip_track_usage", {"customer_id": "cus_x", "quantity": 1}, "VALIDATION_ERROR")
    assert [d["path"] for d in error["details"]] == ["meter"]
    assert h.sent == []


async def test_track_usage_batch_records_each_event_with_its_own_key(h: Harness) -> None:
    customer_id = await h.new_customer()
    events = [
        {"customer_id": customer_id, "meter": "api_calls", "quantity": 1, "idempotency_key": "b-0"},
        {"customer_id": customer_id, "meter": "tokens", "quantity": 300},
    ]
    out = await h.ok("drip_track_usage_batch", {"events": events})
    assert (out["recorded"], out["queued"], out["failed"], out["duplicates"]) == (2, 0, 0, 0)
    assert [r["index"] for r in out["results"]] == [0, 1]
    assert out["results"][0]["idempotency_key"] == "b-0"
    assert out["results"][1]["idempotency_key"]
    assert all(r["usage_event_id"] for r in out["results"])
    assert h.store.count_usage_events(customer_id, kind="internal") == 2


async def test_track_usage_batch_reports_a_failing_item_without_failing_the_batch(h: Harness) -> None:
    customer_id = await h.new_customer()
    events = [
        {"customer_id": customer_id, "meter": "api_calls", "quantity": 1},
        {"customer_id": "cus_missing", "meter": "api_calls", "quantity": 1},
    ]
    out = await h.ok("drip_track_usage_batch", {"events": events})
    assert (out["recorded"], out["failed"]) == (1, 1)
    failed = out["results"][1]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "NOT_FOUND"
    assert failed["idempotency_key"]


async def test_track_usage_batch_with_no_events_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_track_usage_batch", {"events": []}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "events"
    assert h.sent == []


async def test_track_usage_batch_bad_quantity_names_the_event_index(h: Harness) -> None:
    events = [
        {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
        {"customer_id": "cus_x", "meter": "api_calls", "quantity": 0},
    ]
    error = await h.error("drip_track_usage_batch", {"events": events}, "VALIDATION_ERROR")
    assert [d["path"] for d in error["details"]] == ["events.1.quantity"]
    assert h.sent == []


async def test_list_meters_lists_the_seeded_pricing_plans(h: Harness) -> None:
    out = await h.ok("drip_list_meters")
    prices = {m["meter"]: Decimal(m["unit_price_usd"]) for m in out["meters"]}
    assert prices["api_calls"] == Decimal("0.001")
    assert prices["tokens"] == Decimal("0.00001")
    assert out["count"] == len(out["meters"])


async def test_estimate_cost_prices_hypothetical_usage_without_recording(h: Harness) -> None:
    out = await h.ok("drip_estimate_cost", {"items": [{"meter": "api_calls", "quantity": 1000}]})
    assert out["estimated_total_usdc"] == "1.000000"
    [line] = out["lines"]
    assert (line["meter"], line["estimated_cost_usdc"], line["has_pricing_plan"]) == ("api_calls", "1.000000", True)
    assert h.store.count_usage_events() == 0


async def test_estimate_cost_zero_quantity_is_refused_naming_the_item(h: Harness) -> None:
    error = await h.error("drip_estimate_cost", {"items": [{"meter": "api_calls", "quantity": 0}]}, "VALIDATION_ERROR")
    assert [d["path"] for d in error["details"]] == ["items.0.quantity"]
    assert h.sent == []


async def test_estimate_from_usage_prices_recorded_usage(h: Harness) -> None:
    customer_id = await h.new_customer()
    await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "tokens", "quantity": 2000})
    out = await h.ok(
        "drip_estimate_from_usage",
        {"period_start": "2020-01-01T00:00:00Z", "period_end": "2099-01-01T00:00:00Z", "customer_id": customer_id},
    )
    assert out["estimated_total_usdc"] == "0.020000"
    assert [line["meter"] for line in out["lines"]] == ["tokens"]


async def test_estimate_from_usage_end_before_start_is_refused_before_sending(h: Harness) -> None:
    error = await h.error(
        "drip_estimate_from_usage",
        {"period_start": "2026-02-01T00:00:00Z", "period_end": "2026-01-01T00:00:00Z"},
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["path"] == "period_end"
    assert h.sent == []


async def test_estimate_cost_custom_pricing_beats_the_plan_and_default_prices_unplanned_meters(h: Harness) -> None:
    args = {
        "items": [{"meter": "api_calls", "quantity": 1000}, {"meter": "gpu_seconds", "quantity": 10}],
        "custom_pricing": [{"meter": "api_calls", "unit_price": "0.002"}],
        "default_unit_price": 0.5,
    }
    out = await h.ok("drip_estimate_cost", args)
    [sent] = h.sent_to("POST", "/v1/cost-estimate/hypothetical")
    assert sent.body["customPricing"] == {"api_calls": "0.002"}
    assert sent.body["defaultUnitPrice"] == "0.5"
    lines = {line["meter"]: line for line in out["lines"]}
    assert lines["api_calls"]["estimated_cost_usdc"] == "2.000000"  # the plan alone gives 1.000000
    assert (lines["gpu_seconds"]["estimated_cost_usdc"], lines["gpu_seconds"]["has_pricing_plan"]) == (
        "5.000000",
        False,
    )
    assert out["estimated_total_usdc"] == "7.000000"


async def test_estimate_cost_a_meter_priced_twice_is_refused_before_sending(h: Harness) -> None:
    prices = [{"meter": "api_calls", "unit_price": 1}, {"meter": "api_calls", "unit_price": 2}]
    args = {"items": [{"meter": "api_calls", "quantity": 1}], "custom_pricing": prices}
    await h.error("drip_estimate_cost", args, "VALIDATION_ERROR")
    assert h.sent == []


async def test_estimate_from_usage_custom_pricing_default_price_and_charged_events(h: Harness) -> None:
    customer_id = await h.new_customer()
    await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "tokens", "quantity": 2000})
    await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "gpu_seconds", "quantity": 4})
    await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 5})
    period = {"period_start": "2020-01-01T00:00:00Z", "period_end": "2099-01-01T00:00:00Z", "customer_id": customer_id}
    plain = await h.ok("drip_estimate_from_usage", period)
    assert "includeChargedEvents" not in h.sent_to("POST", "/v1/cost-estimate/from-usage")[0].body
    assert sorted(line["meter"] for line in plain["lines"]) == ["api_calls", "gpu_seconds", "tokens"]
    out = await h.ok(
        "drip_estimate_from_usage",
        {
            **period,
            "include_charged_events": False,
            "default_unit_price": "0.25",
            "custom_pricing": [{"meter": "tokens", "unit_price": 0.001}],
        },
    )
    sent = h.sent_to("POST", "/v1/cost-estimate/from-usage")[-1].body
    assert (sent["includeChargedEvents"], sent["defaultUnitPrice"], sent["customPricing"]) == (
        False,
        "0.25",
        {"tokens": "0.001"},
    )
    lines = {line["meter"]: line["estimated_cost_usdc"] for line in out["lines"]}
    assert lines == {"tokens": "2.000000", "gpu_seconds": "1.000000"}  # the charged api_calls are left out


async def test_track_usage_by_external_customer_id_reaches_drip_and_records_for_that_customer(h: Harness) -> None:
    customer_id = await h.new_customer("ext-user-7")
    out = await h.ok("drip_track_usage", {"external_customer_id": "ext-user-7", "meter": "tokens", "quantity": 3})
    [sent] = h.sent_to("POST", "/v1/usage/internal")
    assert sent.body["externalCustomerId"] == "ext-user-7"
    assert "customerId" not in sent.body
    assert (out["status"], out["customer_id"]) == ("recorded", customer_id)
    assert h.store.count_usage_events(customer_id, kind="internal") == 1
    summary = await h.ok("drip_session_summary", {})
    assert [e["customer_id"] for e in summary["entries"]] == [customer_id]


@pytest.mark.parametrize(
    "who", [{}, {"customer_id": "cus_x", "external_customer_id": "user-x"}], ids=["neither", "both"]
)
async def test_track_usage_needs_exactly_one_customer_reference(h: Harness, who: dict[str, str]) -> None:
    error = await h.error("drip_track_usage", {**who, "meter": "tokens", "quantity": 1}, "VALIDATION_ERROR")
    assert "customer_id or external_customer_id" in error["message"]
    assert h.sent == []


async def test_track_usage_batch_mixes_customer_ids_and_external_customer_ids(h: Harness) -> None:
    customer_id = await h.new_customer("ext-batch")
    events = [
        {"customer_id": customer_id, "meter": "tokens", "quantity": 1},
        {"external_customer_id": "ext-batch", "meter": "tokens", "quantity": 2},
    ]
    out = await h.ok("drip_track_usage_batch", {"events": events})
    assert out["recorded"] == 2
    assert sorted(s.body.get("externalCustomerId", "-") for s in h.sent_to("POST", "/v1/usage/internal")) == [
        "-",
        "ext-batch",
    ]
    assert h.store.count_usage_events(customer_id, kind="internal") == 2
    bad = [{"customer_id": customer_id, "external_customer_id": "ext-batch", "meter": "tokens", "quantity": 1}]
    error = await h.error("drip_track_usage_batch", {"events": bad}, "VALIDATION_ERROR")
    assert "customer_id or external_customer_id" in error["message"]
