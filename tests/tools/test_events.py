"""The events toolset end to end (public key, both surfaces): the ledger of usage writes and run events, traces."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_fixtures import PK, Harness, open_harness

pytestmark = pytest.mark.anyio


async def test_a_usage_write_appears_in_list_events(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    tracked = await hs.op_ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3})
    charged = await hs.op_ok("drip_charge", {"customer_id": customer_id, "meter": "tokens", "quantity": 2})
    out = await hs.op_ok("drip_list_events", {"customer_id": customer_id, "event_type": "USAGE"})
    events = {e["id"]: e for e in out["data"]}
    assert set(events) == {tracked["usage_event_id"], charged["usage_event_id"]}
    billed = events[charged["usage_event_id"]]
    assert (billed["usage_type"], billed["charge_id"], billed["customer_id"]) == (
        "tokens",
        charged["charge_id"],
        customer_id,
    )
    assert out["pagination"] == {"total": 2, "limit": 20, "offset": 0, "has_more": False}


async def test_list_events_pages_with_limit_and_offset(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    for _ in range(3):
        await hs.op_ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
    first = await hs.op_ok("drip_list_events", {"customer_id": customer_id, "limit": 2})
    rest = await hs.op_ok("drip_list_events", {"customer_id": customer_id, "limit": 2, "offset": 2})
    assert (len(first["data"]), first["pagination"]["has_more"]) == (2, True)
    assert (len(rest["data"]), rest["pagination"]["has_more"]) == (1, False)


async def test_list_events_filters_run_events_by_run(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    run_id = await hs.new_run(customer_id)
    emitted = await hs.op_ok("drip_emit_event", {"run_id": run_id, "event_type": "llm_call", "quantity": 5})
    await hs.op_ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
    out = await hs.op_ok("drip_list_events", {"run_id": run_id})
    assert [(e["id"], e["event_type"], e["outcome"]) for e in out["data"]] == [
        (emitted["event_id"], "llm_call", "SUCCEEDED")
    ]


async def test_list_events_unknown_outcome_is_refused_before_sending(hs: Harness) -> None:
    await hs.op_error("drip_list_events", {"outcome": "MAYBE"}, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_get_event_and_its_trace(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    charged = await hs.op_ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
    event_id = charged["usage_event_id"]
    event = await hs.op_ok("drip_get_event", {"event_id": event_id})
    assert (event["id"], event["event_type"], event["charge_id"]) == (event_id, "USAGE", charged["charge_id"])
    trace = await hs.op_ok("drip_get_event_trace", {"event_id": event_id})
    assert trace["event"]["id"] == event_id
    assert (trace["ancestors"], trace["children"], trace["anomalies"]) == ([], [], [])
    assert trace["summary"]["has_failures"] is False


async def test_get_event_unknown_id_is_not_found(hs: Harness) -> None:
    await hs.op_error("drip_get_event", {"event_id": "evt_missing"}, "NOT_FOUND")
    await hs.op_error("drip_get_event_trace", {"event_id": "evt_missing"}, "NOT_FOUND")


async def test_get_trace_returns_every_event_sharing_a_correlation_id(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    started = await hs.op_ok(
        "drip_start_run", {"customer_id": customer_id, "workflow": "traced_agent", "correlation_id": "corr-42"}
    )
    first = await hs.op_ok("drip_emit_event", {"run_id": started["run_id"], "event_type": "plan"})
    second = await hs.op_ok("drip_emit_event", {"run_id": started["run_id"], "event_type": "act"})
    trace = await hs.op_ok("drip_get_trace", {"correlation_id": "corr-42"})
    assert trace["correlation_id"] == "corr-42"
    assert [e["id"] for e in trace["events"]] == [first["event_id"], second["event_id"]]
    assert trace["run_ids"] == [started["run_id"]]
    assert trace["summary"]["total_events"] == 2
    await hs.op_error("drip_get_trace", {"correlation_id": "corr-none"}, "NOT_FOUND")


async def test_event_reads_work_with_a_public_key(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=PK) as h:
        customer_id = await h.new_customer()
        await h.ok("drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
        out = await h.ok("drip_list_events", {"customer_id": customer_id})
        assert len(out["data"]) == 1
