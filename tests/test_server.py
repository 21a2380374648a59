"""The MCP server end to end, in-process: `mcp.Client(server)` in auto and legacy modes against the sandbox.

The machinery every tool shares: argument validation, metadata redaction,
scope, unknown tools and key hygiene. Each toolset's happy and error paths are
in ``tests/tools/``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, PK, SK, Harness, open_harness, result_payload

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
    "drip_list_runs": {"customer_id": "cus_x"},
    "drip_get_workflow": {"workflow_id": "wf_x"},
    "drip_update_workflow": {"workflow_id": "wf_x", "name": "Renamed"},
    "drip_list_events": {"customer_id": "cus_x"},
    "drip_get_event": {"event_id": "evt_x"},
    "drip_get_event_trace": {"event_id": "evt_x"},
    "drip_get_trace": {"correlation_id": "corr_x"},
    "drip_charge": {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
    "drip_charge_async": {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1},
    "drip_refund_charge": {"charge_id": "chg_x", "reason": "customer_request"},
    "drip_list_usage": {},
    "drip_get_balance": {"customer_id": "cus_x"},
    "drip_get_charge": {"charge_id": "chg_x"},
    "drip_list_charges": {},
    "drip_checkout": {"amount_cents": 500, "return_url": "https://example.com/ok", "customer_id": "cus_x"},
    "drip_create_customer": {"external_customer_id": "user-x"},
    "drip_get_or_create_customer": {"external_customer_id": "user-x"},
    "drip_get_customer": {"customer_id": "cus_x"},
    "drip_list_customers": {},
    "drip_update_customer": {"customer_id": "cus_x", "status": "PAUSED"},
    "drip_provision_customer": {"customer_id": "cus_x"},
    "drip_sync_customer_balance": {"customer_id": "cus_x"},
    "drip_set_customer_spending_cap": {"customer_id": "cus_x", "cap_type": "DAILY_CHARGE_LIMIT", "limit_value": 5},
    "drip_get_customer_spending_caps": {"customer_id": "cus_x"},
    "drip_remove_customer_spending_cap": {"customer_id": "cus_x", "cap_id": "cap_x"},
    "drip_create_webhook": {"url": WEBHOOK_URL, "events": ["*"]},
    "drip_list_webhooks": {},
    "drip_get_webhook": {"webhook_id": "wh_x"},
    "drip_delete_webhook": {"webhook_id": "wh_x"},
    "drip_test_webhook": {"webhook_id": "wh_x"},
    "drip_rotate_webhook_secret": {"webhook_id": "wh_x"},
    "drip_update_webhook": {"webhook_id": "wh_x", "is_active": False},
    "drip_list_webhook_deliveries": {"webhook_id": "wh_x"},
    "drip_get_webhook_delivery": {"webhook_id": "wh_x", "delivery_id": "del_x"},
    "drip_retry_webhook_delivery": {"webhook_id": "wh_x", "delivery_id": "del_x"},
    "drip_check_entitlement": {"customer_id": "cus_x", "feature_key": "api_calls"},
    "drip_create_entitlement_plan": {"name": "Pro", "slug": "pro"},
    "drip_list_entitlement_plans": {},
    "drip_get_entitlement_plan": {"plan_id": "plan_x"},
    "drip_update_entitlement_plan": {"plan_id": "plan_x", "is_default": True},
    "drip_delete_entitlement_plan": {"plan_id": "plan_x"},
    "drip_add_entitlement_rule": {
        "plan_id": "plan_x",
        "feature_key": "api_calls",
        "limit_type": "COUNT",
        "period": "MONTHLY",
        "limit_value": 100,
    },
    "drip_list_entitlement_rules": {"plan_id": "plan_x"},
    "drip_update_entitlement_rule": {"rule_id": "rule_x", "unlimited": True},
    "drip_delete_entitlement_rule": {"rule_id": "rule_x"},
    "drip_assign_customer_entitlement": {
        "customer_id": "cus_x",
        "plan_id": "plan_x",
        "overrides": [{"feature_key": "api_calls", "limit_value": 500}],
    },
    "drip_get_customer_entitlement": {"customer_id": "cus_x"},
    "drip_create_subscription": {"customer_id": "cus_x", "name": "Pro", "interval": "MONTHLY", "price_usdc": 29},
    "drip_list_subscriptions": {},
    "drip_get_subscription": {"subscription_id": "sub_x"},
    "drip_update_subscription": {"subscription_id": "sub_x", "price_usdc": 39},
    "drip_cancel_subscription": {"subscription_id": "sub_x"},
    "drip_pause_subscription": {"subscription_id": "sub_x", "resume_date": "2026-07-01T00:00:00Z"},
    "drip_resume_subscription": {"subscription_id": "sub_x"},
    "drip_create_contract": {
        "customer_id": "cus_x",
        "name": "Enterprise",
        "start_date": "2026-01-01",
        "included_units": [{"unit_type": "api_calls", "units": 1000}],
    },
    "drip_list_contracts": {},
    "drip_get_contract": {"contract_id": "ctr_x"},
    "drip_update_contract": {"contract_id": "ctr_x", "status": "CANCELLED"},
    "drip_delete_contract": {"contract_id": "ctr_x"},
    "drip_add_contract_override": {"contract_id": "ctr_x", "unit_type": "api_calls", "unit_price_usd": 0.0005},
    "drip_remove_contract_override": {"contract_id": "ctr_x", "unit_type": "api_calls"},
    "drip_ping": {},
    "drip_session_summary": {},
    "drip_get_batch": {"batch_id": "bat_0123456789abcdef01234567"},
    "drip_find_operations": {"query": "charge"},
    "drip_call_operation": {"operation": "drip_list_meters", "arguments": {}},
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
        assert SK not in json.dumps(result_payload(result))
