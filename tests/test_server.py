"""The MCP server end to end, in-process: `mcp.Client(server)` in auto and legacy modes against the sandbox.

Every tool in the registry gets a happy path on real sandbox data (its structured
content validated against its output model and mirrored by a compact JSON text
block) and at least one structured error path.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, PK, SK, Harness, file_exists, open_harness, read_secret_file

from drip_mcp.tools import TOOLS_BY_NAME

pytestmark = pytest.mark.anyio

WEBHOOK_URL = "http://127.0.0.1:9/drip"  # loopback: the sandbox refuses other webhook hosts by default


@pytest.fixture(params=MODES)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, request.param) as harness:
        yield harness


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# --- arguments that validate for every tool (ids are well-formed, not necessarily real) ---------------------

VALID_ARGS: dict[str, dict[str, Any]] = {
    "drip_track_usage": {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
    "drip_track_usage_batch": {"events": [{"customer_id": "cus_x", "meter": "api_calls", "quantity": 1}]},
    "drip_list_meters": {},
    "drip_estimate_cost": {"items": [{"meter": "api_calls", "quantity": 1}]},
    "drip_estimate_from_usage": {"period_start": "2026-01-01T00:00:00Z", "period_end": "2026-02-01T00:00:00Z"},
    "drip_record_run": {"customer_id": "cus_x", "workflow": "wf"},
    "drip_start_run": {"customer_id": "cus_x", "workflow": "wf"},
    "drip_emit_event": {"run_id": "run_x", "event_type": "llm_call"},
    "drip_emit_events_batch": {"run_id": "run_x", "events": [{"event_type": "llm_call"}]},
    "drip_end_run": {"run_id": "run_x", "status": "COMPLETED"},
    "drip_get_run": {"run_id": "run_x"},
    "drip_get_run_timeline": {"run_id": "run_x"},
    "drip_create_workflow": {"name": "Wf", "slug": "wf"},
    "drip_list_workflows": {},
    "drip_charge": {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
    "drip_get_balance": {"customer_id": "cus_x"},
    "drip_get_charge": {"charge_id": "chg_x"},
    "drip_list_charges": {},
    "drip_checkout": {"amount_cents": 500, "return_url": "https://example.com/ok", "customer_id": "cus_x"},
    "drip_create_customer": {"external_customer_id": "user-x"},
    "drip_get_customer": {"customer_id": "cus_x"},
    "drip_list_customers": {},
    "drip_create_webhook": {"url": WEBHOOK_URL, "events": ["*"]},
    "drip_list_webhooks": {},
    "drip_get_webhook": {"webhook_id": "wh_x"},
    "drip_delete_webhook": {"webhook_id": "wh_x"},
    "drip_test_webhook": {"webhook_id": "wh_x"},
    "drip_rotate_webhook_secret": {"webhook_id": "wh_x"},
    "drip_ping": {},
    "drip_session_summary": {},
}


def test_valid_args_table_covers_every_registered_tool() -> None:
    assert set(VALID_ARGS) == set(TOOLS_BY_NAME)


def test_valid_args_table_validates_against_each_input_model() -> None:
    for name, args in VALID_ARGS.items():
        TOOLS_BY_NAME[name].input_model.model_validate(args)


@pytest.mark.parametrize("name", sorted(VALID_ARGS))
async def test_every_tool_refuses_an_unknown_argument_before_sending(h: Harness, name: str) -> None:
    error = await h.error(name, {**VALID_ARGS[name], "bogus_field": 1}, "VALIDATION_ERROR")
    assert error["status"] == 422
    assert error["retryable"] is False
    assert [d["path"] for d in error["details"]] == ["bogus_field"]
    assert "bogus_field" in error["message"]
    assert h.sent == []


# --- customers ----------------------------------------------------------------------------------------------


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
    error = result.structured_content["error"]
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


# --- usage --------------------------------------------------------------------------------------------------


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


# --- billing ------------------------------------------------------------------------------------------------


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


# --- runs ---------------------------------------------------------------------------------------------------


async def test_start_run_creates_an_unknown_workflow_slug_and_a_pending_run(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok(
        "drip_start_run", {"customer_id": customer_id, "workflow": "research_agent", "idempotency_key": "run-1"}
    )
    assert out["run_status"] == "PENDING"
    assert out["workflow_name"] == "Research Agent"
    assert out["idempotency_key"] == "run-1"
    workflows = await h.ok("drip_list_workflows")
    assert [(w["slug"], w["id"]) for w in workflows["workflows"]] == [("research_agent", out["workflow_id"])]


async def test_start_run_reuses_an_existing_workflow(h: Harness) -> None:
    customer_id = await h.new_customer()
    first = await h.ok("drip_start_run", {"customer_id": customer_id, "workflow": "wf_one"})
    second = await h.ok("drip_start_run", {"customer_id": customer_id, "workflow": first["workflow_id"]})
    assert second["workflow_id"] == first["workflow_id"]
    assert (await h.ok("drip_list_workflows"))["count"] == 1


async def test_start_run_unknown_customer_is_not_found(h: Harness) -> None:
    await h.error("drip_start_run", {"customer_id": "cus_missing", "workflow": "wf"}, "NOT_FOUND")


async def test_emit_event_adds_an_event_and_starts_the_run(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    out = await h.ok(
        "drip_emit_event",
        {"run_id": run_id, "event_type": "llm_call", "quantity": 120, "units": "tokens", "idempotency_key": "e-1"},
    )
    assert (out["run_id"], out["event_type"], out["status"]) == (run_id, "llm_call", "recorded")
    assert out["event_id"]
    assert out["idempotency_key"] == "e-1"
    run = await h.ok("drip_get_run", {"run_id": run_id})
    assert run["status"] == "RUNNING"
    assert run["event_count"] == 1


async def test_emit_event_same_idempotency_key_twice_adds_one_event(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    args = {"run_id": run_id, "event_type": "tool_call", "idempotency_key": "evt-once"}
    first = await h.ok("drip_emit_event", args)
    second = await h.ok("drip_emit_event", args)
    assert second["is_duplicate"] is True
    assert second["event_id"] == first["event_id"]
    assert (await h.ok("drip_get_run", {"run_id": run_id}))["event_count"] == 1


async def test_emit_event_unknown_run_is_not_found(h: Harness) -> None:
    await h.error("drip_emit_event", {"run_id": "run_missing", "event_type": "llm_call"}, "NOT_FOUND")


async def test_emit_event_negative_quantity_is_refused_before_sending(h: Harness) -> None:
    error = await h.error(
        "drip_emit_event", {"run_id": "run_x", "event_type": "llm_call", "quantity": -1}, "VALIDATION_ERROR"
    )
    assert [d["path"] for d in error["details"]] == ["quantity"]
    assert h.sent == []


async def test_emit_events_batch_adds_every_event(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    out = await h.ok(
        "drip_emit_events_batch",
        {
            "run_id": run_id,
            "events": [{"event_type": "llm_call"}, {"event_type": "tool_call"}],
            "idempotency_key": "bk",
        },
    )
    assert (out["created"], out["duplicates"], out["is_duplicate"]) == (2, 0, False)
    assert len(out["event_ids"]) == 2
    assert out["idempotency_key"] == "bk"
    assert (await h.ok("drip_get_run", {"run_id": run_id}))["event_count"] == 2


async def test_emit_events_batch_retried_with_the_same_key_records_each_event_once(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    args = {"run_id": run_id, "events": [{"event_type": "a"}, {"event_type": "b"}], "idempotency_key": "batch-once"}
    first = await h.ok("drip_emit_events_batch", args)
    second = await h.ok("drip_emit_events_batch", args)
    assert (second["created"], second["duplicates"], second["is_duplicate"]) == (0, 2, True)
    assert second["event_ids"] == first["event_ids"]
    assert (await h.ok("drip_get_run", {"run_id": run_id}))["event_count"] == 2


async def test_emit_events_batch_without_any_run_id_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_emit_events_batch", {"events": [{"event_type": "llm_call"}]}, "VALIDATION_ERROR")
    assert "run_id" in error["message"]
    assert h.sent == []


async def test_end_run_completes_the_run_with_totals(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    await h.ok("drip_emit_event", {"run_id": run_id, "event_type": "llm_call", "cost_units": 0.25})
    out = await h.ok("drip_end_run", {"run_id": run_id, "status": "COMPLETED", "idempotency_key": "end-1"})
    assert (out["run_id"], out["run_status"], out["status"]) == (run_id, "COMPLETED", "recorded")
    assert out["event_count"] == 1
    assert Decimal(out["total_cost_units"]) == Decimal("0.25")
    assert out["ended_at"]
    assert out["idempotency_key"] == "end-1"


async def test_end_run_twice_is_a_conflict_and_changes_nothing(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    await h.ok("drip_end_run", {"run_id": run_id, "status": "FAILED", "error_message": "boom"})
    error = await h.error("drip_end_run", {"run_id": run_id, "status": "COMPLETED"}, "RUN_ALREADY_ENDED")
    assert error["status"] == 409
    run = await h.ok("drip_get_run", {"run_id": run_id})
    assert run["status"] == "FAILED"
    assert run["error_message"] == "boom"


async def test_end_run_non_terminal_status_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_end_run", {"run_id": "run_x", "status": "RUNNING"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "status"
    assert h.sent == []


async def test_get_run_returns_status_and_totals(h: Harness) -> None:
    customer_id = await h.new_customer()
    run_id = await h.new_run(customer_id)
    await h.ok("drip_emit_event", {"run_id": run_id, "event_type": "llm_call", "quantity": 3, "cost_units": 1.5})
    out = await h.ok("drip_get_run", {"run_id": run_id})
    assert (out["run_id"], out["customer_id"], out["status"]) == (run_id, customer_id, "RUNNING")
    assert Decimal(out["total_quantity"]) == 3
    assert Decimal(out["total_cost_units"]) == Decimal("1.5")


async def test_get_run_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_get_run", {"run_id": "run_missing"}, "NOT_FOUND")


async def test_get_run_timeline_lists_events_in_order_and_pages(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    for event_type in ("plan", "llm_call", "tool_call"):
        await h.ok("drip_emit_event", {"run_id": run_id, "event_type": event_type})
    first = await h.ok("drip_get_run_timeline", {"run_id": run_id, "limit": 2})
    assert [e["event_type"] for e in first["events"]] == ["plan", "llm_call"]
    assert first["has_more"] is True
    rest = await h.ok("drip_get_run_timeline", {"run_id": run_id, "cursor": first["next_cursor"]})
    assert [e["event_type"] for e in rest["events"]] == ["tool_call"]
    assert rest["has_more"] is False
    assert first["summary"]["totalEvents"] == 3


async def test_get_run_timeline_unknown_run_is_not_found(h: Harness) -> None:
    await h.error("drip_get_run_timeline", {"run_id": "run_missing"}, "NOT_FOUND")


async def test_record_run_records_a_finished_run_with_its_events(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok(
        "drip_record_run",
        {
            "customer_id": customer_id,
            "workflow": "nightly_report",
            "events": [{"event_type": "llm_call", "quantity": 2}, {"event_type": "tool_call"}],
            "status": "COMPLETED",
            "idempotency_key": "rec-1",
        },
    )
    assert out["run_status"] == "COMPLETED"
    assert out["workflow_name"] == "Nightly Report"
    assert (out["events_created"], out["events_duplicates"]) == (2, 0)
    assert out["idempotency_key"] == "rec-1"
    run = await h.ok("drip_get_run", {"run_id": out["run_id"]})
    assert run["event_count"] == 2


def count_runs(h: Harness) -> int:
    """Runs in the sandbox database, read through its own connection (sync: called from async tests)."""
    assert h.settings.sandbox_db is not None
    with closing(sqlite3.connect(h.settings.sandbox_db)) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return count


async def test_record_run_retried_with_the_same_idempotency_key_records_one_run(h: Harness) -> None:
    # The description promises "Safe to retry with the same idempotency_key"; Drip's /runs/record ignores the
    # key (externalRunId is its idempotent run id), so a retry must not record the run a second time.
    customer_id = await h.new_customer()
    args = {
        "customer_id": customer_id,
        "workflow": "retry_agent",
        "events": [{"event_type": "llm_call"}],
        "idempotency_key": "rec-retry",
    }
    first = await h.ok("drip_record_run", args)
    second = await h.call("drip_record_run", args)
    assert count_runs(h) == 1
    if not second.is_error:
        assert second.structured_content["run_id"] == first["run_id"]
        assert second.structured_content["is_duplicate"] is True


async def test_start_run_retried_with_the_same_idempotency_key_starts_one_run(h: Harness) -> None:
    customer_id = await h.new_customer()
    args = {"customer_id": customer_id, "workflow": "retry_agent", "idempotency_key": "start-retry"}
    first = await h.ok("drip_start_run", args)
    second = await h.call("drip_start_run", args)
    assert count_runs(h) == 1
    if not second.is_error:
        assert second.structured_content["run_id"] == first["run_id"]
        assert second.structured_content["is_duplicate"] is True


async def test_record_run_unknown_customer_is_not_found(h: Harness) -> None:
    await h.error("drip_record_run", {"customer_id": "cus_missing", "workflow": "wf"}, "NOT_FOUND")


async def test_create_workflow_creates_it(h: Harness) -> None:
    out = await h.ok(
        "drip_create_workflow", {"name": "Support bot", "slug": "support_bot", "idempotency_key": "wf-key"}
    )
    assert (out["workflow"]["slug"], out["workflow"]["name"]) == ("support_bot", "Support bot")
    assert out["workflow"]["product_surface"] == "AGENT"
    assert out["idempotency_key"] == "wf-key"


async def test_create_workflow_existing_slug_is_a_conflict(h: Harness) -> None:
    await h.ok("drip_create_workflow", {"name": "A", "slug": "dup_slug"})
    result = await h.call("drip_create_workflow", {"name": "B", "slug": "dup_slug"})
    assert result.is_error
    assert result.structured_content["error"]["status"] == 409


async def test_create_workflow_bad_slug_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_create_workflow", {"name": "A", "slug": "Not A Slug"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "slug"
    assert h.sent == []


async def test_list_workflows_out_of_range_limit_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_list_workflows", {"limit": 101}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "limit"
    assert h.sent == []


# --- webhooks (secret key) ----------------------------------------------------------------------------------


async def test_create_webhook_registers_the_endpoint(h: Harness) -> None:
    out = await h.ok(
        "drip_create_webhook",
        {"url": WEBHOOK_URL, "events": ["charge.succeeded"], "description": "billing", "idempotency_key": "wh-1"},
    )
    assert out["webhook"]["url"] == WEBHOOK_URL
    assert out["webhook"]["events"] == ["charge.succeeded"]
    assert out["idempotency_key"] == "wh-1"
    assert h.store.webhook(out["webhook"]["id"])["url"] == WEBHOOK_URL


async def test_create_webhook_plain_http_to_a_remote_host_is_rejected_by_drip(h: Harness) -> None:
    error = await h.error(
        "drip_create_webhook", {"url": "http://example.com/hook", "events": ["*"]}, "VALIDATION_ERROR"
    )
    assert error["status"] == 422


async def test_list_and_get_webhook_never_show_the_secret(h: Harness) -> None:
    created = await h.new_webhook()
    listed = await h.ok("drip_list_webhooks")
    assert [w["id"] for w in listed["webhooks"]] == [created["webhook"]["id"]]
    got = await h.ok("drip_get_webhook", {"webhook_id": created["webhook"]["id"]})
    assert got["url"] == WEBHOOK_URL
    secret = h.store.webhook(created["webhook"]["id"])["secret"]
    assert secret not in json.dumps(listed)
    assert secret not in json.dumps(got)


async def test_get_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_get_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_delete_webhook_removes_it_and_its_secret_file(h: Harness) -> None:
    created = await h.new_webhook()
    secret_file = created["secret_file"]
    assert file_exists(secret_file)
    out = await h.ok("drip_delete_webhook", {"webhook_id": created["webhook"]["id"]})
    assert (out["deleted"], out["webhook_id"], out["is_duplicate"]) == (True, created["webhook"]["id"], False)
    retried = await h.ok(
        "drip_delete_webhook", {"webhook_id": created["webhook"]["id"], "idempotency_key": out["idempotency_key"]}
    )
    assert (retried["deleted"], retried["is_duplicate"]) == (True, True)
    assert not file_exists(secret_file)
    assert (await h.ok("drip_list_webhooks"))["count"] == 0


async def test_delete_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_delete_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_test_webhook_delivers_a_signed_test_event(h: Harness) -> None:
    created = await h.new_webhook()
    out = await h.ok("drip_test_webhook", {"webhook_id": created["webhook"]["id"], "idempotency_key": "wht-1"})
    assert out["delivery_status"] == "DELIVERED"
    assert out["response_code"] == 200
    assert out["idempotency_key"] == "wht-1"
    tests = [r for r in h.deliveries if json.loads(r.content)["type"] == "webhook.test"]
    assert len(tests) == 1
    assert tests[0].headers["X-Drip-Signature"].startswith("t=")


async def test_test_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_test_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_rotate_webhook_secret_replaces_the_secret(h: Harness) -> None:
    created = await h.new_webhook()
    webhook_id = created["webhook"]["id"]
    before = h.store.webhook(webhook_id)["secret"]
    out = await h.ok("drip_rotate_webhook_secret", {"webhook_id": webhook_id, "idempotency_key": "rot-1"})
    after = h.store.webhook(webhook_id)["secret"]
    assert after != before
    assert out["webhook_id"] == webhook_id
    assert out["idempotency_key"] == "rot-1"
    assert read_secret_file(out["secret_file"]) == after


async def test_rotate_webhook_secret_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_rotate_webhook_secret", {"webhook_id": "wh_missing"}, "NOT_FOUND")


# --- status -------------------------------------------------------------------------------------------------


async def test_ping_reports_health_key_and_tools_without_revealing_the_key(h: Harness) -> None:
    out = await h.ok("drip_ping")
    assert out["ok"] is True
    assert out["api_status"] == "healthy"
    assert (out["key_type"], out["key_mode"], out["sandbox"], out["read_only"]) == ("secret", "test", True, False)
    assert out["key"].startswith("sk_test_")
    assert "…" in out["key"]
    assert out["tools"] == list(TOOLS_BY_NAME)
    assert h.sent_to("GET", "/health")


async def test_ping_with_a_public_key_lists_only_public_tools(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        out = await h.ok("drip_ping")
    assert out["key_type"] == "public"
    assert "drip_create_webhook" not in out["tools"]
    assert "drip_charge" in out["tools"]


async def test_session_summary_lists_this_processs_charges_without_calling_drip(h: Harness) -> None:
    customer_id = await h.new_customer()
    await h.ok(
        "drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 4, "idempotency_key": "ss-1"}
    )
    sent_before = len(h.sent)
    out = await h.ok("drip_session_summary")
    assert len(h.sent) == sent_before
    charges = [e for e in out["entries"] if e["idempotency_key"] == "ss-1"]
    assert len(charges) == 1
    assert (charges[0]["customer_id"], charges[0]["meter"]) == (customer_id, "api_calls")
    assert Decimal(charges[0]["amount_usdc"]) == Decimal("0.004")
    assert Decimal(out["total_charged_usdc"]) == Decimal("0.004")


# --- cross-cutting ------------------------------------------------------------------------------------------


async def test_full_flow_customer_usage_charge_balance_run_timeline(h: Harness) -> None:
    customer_id = await h.new_customer("flow-user")
    tracked = await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3})
    assert tracked["status"] == "recorded"
    assert (await h.ok("drip_get_balance", {"customer_id": customer_id}))["balance_usdc"] == "100.000000"
    charged = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3})
    assert charged["amount_usdc"] == "0.003000"
    balance = await h.ok("drip_get_balance", {"customer_id": customer_id})
    assert Decimal("100.000000") - Decimal(balance["balance_usdc"]) == Decimal(charged["amount_usdc"])
    assert balance["balance_usdc"] == "99.997000"
    recorded = await h.ok(
        "drip_record_run",
        {
            "customer_id": customer_id,
            "workflow": "flow_agent",
            "events": [{"event_type": "llm_call", "quantity": 3}, {"event_type": "charge"}],
        },
    )
    timeline = await h.ok("drip_get_run_timeline", {"run_id": recorded["run_id"]})
    assert timeline["status"] == "COMPLETED"
    assert [e["event_type"] for e in timeline["events"]] == ["llm_call", "charge"]


async def test_metadata_with_pii_and_a_key_is_redacted_before_sending(h: Harness) -> None:
    raw_email, raw_key = "jane.doe@example.com", "sk_test_leakedkey123456789"
    metadata = {"model": "gpt-x", "contact": raw_email, "note": raw_key}
    out = await h.ok("drip_create_customer", {"external_customer_id": "user-meta", "metadata": metadata})
    assert sorted(out["redacted_paths"]) == ["metadata.contact", "metadata.note"]
    assert out["customer"]["metadata"]["model"] == "gpt-x"
    [sent] = h.sent_to("POST", "/v1/customers")
    wire = json.dumps(sent.body)
    assert raw_email not in wire
    assert raw_key not in wire
    stored = h.store.customer(out["customer"]["id"])["metadata"]
    assert raw_email not in stored
    assert raw_key not in stored
    assert "gpt-x" in stored


async def test_usage_metadata_is_redacted_before_sending(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok(
        "drip_charge",
        {
            "customer_id": customer_id,
            "meter": "api_calls",
            "quantity": 1,
            "metadata": {"latency_ms": 12, "email": "bob@example.com"},
        },
    )
    assert out["redacted_paths"] == ["metadata.email"]
    [sent] = h.sent_to("POST", "/v1/usage")
    assert sent.body["metadata"]["latency_ms"] == 12
    assert "bob@example.com" not in json.dumps(sent.body)


async def test_strict_metadata_policy_rejects_pii_and_sends_nothing(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, metadata_policy="strict") as h:
        error = await h.error(
            "drip_track_usage",
            {
                "customer_id": "cus_x",
                "meter": "api_calls",
                "quantity": 1,
                "metadata": {"contact": "jane.doe@example.com"},
            },
            "METADATA_REJECTED",
        )
        assert error["retryable"] is False
        assert "metadata.contact" in [d["path"] for d in error["details"]]
        assert "jane.doe@example.com" not in json.dumps(error)
        assert h.sent == []


async def test_strict_metadata_policy_rejects_a_whole_batch_before_sending(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, metadata_policy="strict") as h:
        events = [
            {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
            {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1, "metadata": {"api_key": SK}},
        ]
        await h.error("drip_track_usage_batch", {"events": events}, "METADATA_REJECTED")
        assert h.sent == []


async def test_unknown_tool_is_a_structured_error(h: Harness) -> None:
    error = await h.error("drip_teleport", {}, "UNKNOWN_TOOL")
    assert error["hint"]
    assert h.sent == []


async def test_public_key_on_a_secret_tool_is_refused_without_a_request(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        error = await h.error("drip_create_webhook", VALID_ARGS["drip_create_webhook"], "PUBLIC_KEY_NOT_ALLOWED")
        assert error["status"] == 403
        assert "sk_" in error["message"]
        assert h.sent == []


async def test_errors_never_echo_the_api_key_even_when_drip_does(tmp_path: Path, mode: str) -> None:
    # A customer id that *is* the key: the 404 message from Drip echoes it; the result must not.
    async with open_harness(tmp_path, mode) as h:
        result = await h.call("drip_get_customer", {"customer_id": SK})
        assert result.is_error
        assert SK not in result.content[0].text
        assert SK not in json.dumps(result.structured_content)
