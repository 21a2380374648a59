"""Run events: snake_case or camelCase keys in, camelCase out; unknown keys kept in metadata, redacted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, Harness, open_harness

pytestmark = pytest.mark.anyio

WIRE_KEYS = {"eventType", "quantity", "units", "description", "costUnits", "metadata", "idempotencyKey", "runId"}


@pytest.fixture(params=MODES)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, request.param) as harness:
        yield harness


def stored_metadata(h: Harness, run_id: str) -> list[Any]:
    """Each stored event's metadata (parsed), in order."""
    rows = h.store.run_events(run_id, after_seq=0, limit=100)
    return [None if row["metadata"] is None else json.loads(row["metadata"]) for row in rows]


SNAKE = {"event_type": "llm_call", "quantity": 2, "cost_units": 0.5, "idempotency_key": "ev-snake"}
CAMEL = {"eventType": "tool_call", "quantity": 1, "costUnits": 1.25, "idempotencyKey": "ev-camel"}
EXPECTED_WIRE = [
    {"eventType": "llm_call", "quantity": 2, "costUnits": 0.5, "idempotencyKey": "ev-snake"},
    {"eventType": "tool_call", "quantity": 1, "costUnits": 1.25, "idempotencyKey": "ev-camel"},
]


async def test_record_run_accepts_snake_and_camel_event_keys_and_sends_camel(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok("drip_record_run", {"customer_id": customer_id, "workflow": "wf", "events": [SNAKE, CAMEL]})
    assert out["events_created"] == 2
    [sent] = h.sent_to("POST", "/v1/runs/record")
    assert sent.body["events"] == EXPECTED_WIRE
    run = await h.ok("drip_get_run", {"run_id": out["run_id"]})
    assert run["total_cost_units"] == "1.75"
    timeline = await h.ok("drip_get_run_timeline", {"run_id": out["run_id"]})
    assert [e["event_type"] for e in timeline["events"]] == ["llm_call", "tool_call"]


async def test_emit_events_batch_accepts_snake_and_camel_event_keys_and_sends_camel(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    out = await h.ok("drip_emit_events_batch", {"run_id": run_id, "events": [SNAKE, CAMEL]})
    assert out["created"] == 2
    [sent] = h.sent_to("POST", "/v1/run-events/batch")
    events = sent.body["events"]
    assert [{k: v for k, v in e.items() if k != "runId"} for e in events] == EXPECTED_WIRE
    assert [e["runId"] for e in events] == [run_id, run_id]
    for event in events:
        assert set(event) <= WIRE_KEYS


async def test_emit_events_batch_event_run_id_in_either_case_beats_the_batch_default(h: Harness) -> None:
    customer_id = await h.new_customer()
    default_run = await h.new_run(customer_id)
    other_run = await h.new_run(customer_id, workflow="other_wf")
    events = [{"event_type": "a", "run_id": other_run}, {"eventType": "b", "runId": other_run}, {"event_type": "c"}]
    await h.ok("drip_emit_events_batch", {"run_id": default_run, "events": events})
    [sent] = h.sent_to("POST", "/v1/run-events/batch")
    assert [e["runId"] for e in sent.body["events"]] == [other_run, other_run, default_run]
    assert (await h.ok("drip_get_run", {"run_id": other_run}))["event_count"] == 2


async def test_emit_events_batch_derives_per_event_keys_from_the_batch_key(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    events = [{"event_type": "a"}, {"event_type": "b", "idempotency_key": "own-key"}]
    await h.ok("drip_emit_events_batch", {"run_id": run_id, "events": events, "idempotency_key": "batch-k"})
    [sent] = h.sent_to("POST", "/v1/run-events/batch")
    assert [e["idempotencyKey"] for e in sent.body["events"]] == ["batch-k:0", "own-key"]
    assert sent.body["idempotencyKey"] == "batch-k"


async def test_record_run_keeps_unknown_event_keys_in_metadata(h: Harness) -> None:
    customer_id = await h.new_customer()
    event = {"event_type": "llm_call", "model": "gpt-x", "latency_ms": 840, "metadata": {"step": 1}}
    out = await h.ok("drip_record_run", {"customer_id": customer_id, "workflow": "wf", "events": [event]})
    [sent] = h.sent_to("POST", "/v1/runs/record")
    [wire] = sent.body["events"]
    assert wire["metadata"] == {"model": "gpt-x", "latency_ms": 840, "step": 1}
    assert "model" not in wire
    assert "latency_ms" not in wire
    assert out["redacted_paths"] == []
    assert stored_metadata(h, out["run_id"]) == [{"model": "gpt-x", "latency_ms": 840, "step": 1}]


async def test_emit_events_batch_keeps_unknown_event_keys_in_metadata(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    event = {"eventType": "tool_call", "toolName": "search", "ok": True}
    await h.ok("drip_emit_events_batch", {"run_id": run_id, "events": [event]})
    [sent] = h.sent_to("POST", "/v1/run-events/batch")
    [wire] = sent.body["events"]
    assert wire["metadata"] == {"toolName": "search", "ok": True}
    assert stored_metadata(h, run_id) == [{"toolName": "search", "ok": True}]


async def test_unknown_event_keys_go_through_redaction(h: Harness) -> None:
    customer_id = await h.new_customer()
    email, key = "jane.doe@example.com", "sk_test_leakedkey123456789"
    events = [{"event_type": "llm_call", "model": "gpt-x", "user": email, "note": key}]
    out = await h.ok("drip_record_run", {"customer_id": customer_id, "workflow": "wf", "events": events})
    assert sorted(out["redacted_paths"]) == ["events[0].metadata.note", "events[0].metadata.user"]
    [sent] = h.sent_to("POST", "/v1/runs/record")
    wire = json.dumps(sent.body)
    assert email not in wire
    assert key not in wire
    [metadata] = stored_metadata(h, out["run_id"])
    assert metadata["model"] == "gpt-x"
    assert email not in json.dumps(metadata)
    assert key not in json.dumps(metadata)


async def test_emit_events_batch_redacts_unknown_event_keys(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    events = [{"event_type": "a"}, {"event_type": "b", "contact": "bob@example.com"}]
    out = await h.ok("drip_emit_events_batch", {"run_id": run_id, "events": events})
    assert out["redacted_paths"] == ["events[1].metadata.contact"]
    [sent] = h.sent_to("POST", "/v1/run-events/batch")
    assert "bob@example.com" not in json.dumps(sent.body)


async def test_strict_policy_rejects_pii_in_unknown_event_keys_and_sends_nothing(tmp_path: Path) -> None:
    async with open_harness(tmp_path, metadata_policy="strict") as h:
        events = [{"event_type": "a", "contact": "bob@example.com"}]
        error = await h.error("drip_emit_events_batch", {"run_id": "run_x", "events": events}, "METADATA_REJECTED")
        assert [d["path"] for d in error["details"]] == ["events[0].metadata.contact"]
        assert h.sent == []


async def test_a_bad_event_field_is_refused_naming_the_event(h: Harness) -> None:
    events = [{"event_type": "a"}, {"event_type": "b", "costUnits": -1}]
    error = await h.error(
        "drip_record_run", {"customer_id": "c", "workflow": "wf", "events": events}, "VALIDATION_ERROR"
    )
    assert [d["path"] for d in error["details"]] == ["events.1.costUnits"]
    assert h.sent == []


async def test_an_event_without_a_type_is_refused(h: Harness) -> None:
    error = await h.error(
        "drip_emit_events_batch", {"run_id": "run_x", "events": [{"quantity": 1}]}, "VALIDATION_ERROR"
    )
    assert error["details"][0]["path"].startswith("events.0.")
    assert h.sent == []
