"""The runs toolset end to end: runs, events, timelines and workflows against the sandbox."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal

import pytest
from server_fixtures import Harness, result_payload

pytestmark = pytest.mark.anyio


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
        assert result_payload(second)["run_id"] == first["run_id"]
        assert result_payload(second)["is_duplicate"] is True


async def test_start_run_retried_with_the_same_idempotency_key_starts_one_run(h: Harness) -> None:
    customer_id = await h.new_customer()
    args = {"customer_id": customer_id, "workflow": "retry_agent", "idempotency_key": "start-retry"}
    first = await h.ok("drip_start_run", args)
    second = await h.call("drip_start_run", args)
    assert count_runs(h) == 1
    if not second.is_error:
        assert result_payload(second)["run_id"] == first["run_id"]
        assert result_payload(second)["is_duplicate"] is True


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
    assert result_payload(result)["error"]["status"] == 409


async def test_create_workflow_bad_slug_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_create_workflow", {"name": "A", "slug": "Not A Slug"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "slug"
    assert h.sent == []


async def test_list_workflows_out_of_range_limit_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_list_workflows", {"limit": 101}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "limit"
    assert h.sent == []


# --- list runs, get and update workflows (both surfaces: `hs`) -----------------------------------------------


async def test_list_runs_filters_by_customer_workflow_and_status(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    other = await hs.new_customer("user-other")
    running = await hs.new_run(customer_id)
    recorded = await hs.op_ok("drip_record_run", {"customer_id": customer_id, "workflow": "batch_agent"})
    await hs.new_run(other)
    mine = await hs.op_ok("drip_list_runs", {"customer_id": customer_id})
    assert {r["id"] for r in mine["data"]} == {running, recorded["run_id"]}
    done = await hs.op_ok("drip_list_runs", {"customer_id": customer_id, "status": "COMPLETED"})
    assert [r["id"] for r in done["data"]] == [recorded["run_id"]]
    by_workflow = await hs.op_ok("drip_list_runs", {"workflow_id": recorded["workflow_id"]})
    assert [r["id"] for r in by_workflow["data"]] == [recorded["run_id"]]


async def test_list_runs_unknown_status_is_refused_before_sending(hs: Harness) -> None:
    await hs.op_error("drip_list_runs", {"status": "DONE"}, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_get_and_update_workflow(hs: Harness) -> None:
    created = await hs.op_ok("drip_create_workflow", {"name": "Support", "slug": "support"})
    workflow_id = created["workflow"]["id"]
    got = await hs.op_ok("drip_get_workflow", {"workflow_id": workflow_id})
    assert (got["id"], got["slug"], got["is_active"]) == (workflow_id, "support", True)
    args = {"workflow_id": workflow_id, "name": "Support v2", "description": "tier 1", "is_active": False}
    updated = await hs.op_ok("drip_update_workflow", {**args, "idempotency_key": "wfu-1"})
    assert (updated["name"], updated["description"], updated["is_active"], updated["slug"]) == (
        "Support v2",
        "tier 1",
        False,
        "support",
    )
    assert updated["idempotency_key"] == "wfu-1"
    assert (await hs.op_ok("drip_get_workflow", {"workflow_id": workflow_id}))["name"] == "Support v2"


async def test_get_workflow_unknown_id_is_not_found(hs: Harness) -> None:
    await hs.op_error("drip_get_workflow", {"workflow_id": "wf_missing"}, "NOT_FOUND")


async def test_update_workflow_takes_no_slug(hs: Harness) -> None:
    await hs.op_error("drip_update_workflow", {"workflow_id": "wf_x", "slug": "other"}, "VALIDATION_ERROR")
    assert hs.sent == []


async def test_moved_run_reads_work_on_both_surfaces(hs: Harness) -> None:
    customer_id = await hs.new_customer()
    recorded = await hs.op_ok(
        "drip_record_run",
        {"customer_id": customer_id, "workflow": "moved_agent", "events": [{"event_type": "llm_call"}]},
    )
    run = await hs.op_ok("drip_get_run", {"run_id": recorded["run_id"]})
    timeline = await hs.op_ok("drip_get_run_timeline", {"run_id": recorded["run_id"]})
    workflows = await hs.op_ok("drip_list_workflows", {})
    assert (run["status"], run["event_count"]) == ("COMPLETED", 1)
    assert [e["event_type"] for e in timeline["events"]] == ["llm_call"]
    assert "moved_agent" in [w["slug"] for w in workflows["workflows"]]


def run_column(h: Harness, run_id: str, column: str) -> object:
    """One column of a run row in the sandbox database (sync: called from async tests)."""
    assert h.settings.sandbox_db is not None
    with closing(sqlite3.connect(h.settings.sandbox_db)) as conn:
        return conn.execute(f"SELECT {column} FROM runs WHERE id = ?", (run_id,)).fetchone()[0]  # noqa: S608


def event_links(h: Harness, run_id: str) -> list[tuple[str, str | None, str | None]]:
    """(event type, correlation id, parent event id) of a run's events, in order."""
    assert h.settings.sandbox_db is not None
    with closing(sqlite3.connect(h.settings.sandbox_db)) as conn:
        rows = conn.execute(
            "SELECT event_type, correlation_id, parent_event_id FROM run_events WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


async def test_start_run_and_record_run_send_parent_run_id_and_the_sandbox_stores_it(h: Harness) -> None:
    customer_id = await h.new_customer()
    parent = await h.new_run(customer_id)
    child = await h.ok("drip_start_run", {"customer_id": customer_id, "workflow": "wf", "parent_run_id": parent})
    [sent] = [s for s in h.sent_to("POST", "/v1/runs") if s.body.get("parentRunId")]
    assert sent.body["parentRunId"] == parent
    assert run_column(h, child["run_id"], "parent_run_id") == parent
    recorded = await h.ok("drip_record_run", {"customer_id": customer_id, "workflow": "wf", "parent_run_id": parent})
    [sent] = h.sent_to("POST", "/v1/runs/record")
    assert sent.body["parentRunId"] == parent
    assert run_column(h, recorded["run_id"], "parent_run_id") == parent


async def test_emit_event_sends_correlation_parent_event_and_span_ids(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    first = await h.ok("drip_emit_event", {"run_id": run_id, "event_type": "plan", "correlation_id": "trace-1"})
    await h.ok(
        "drip_emit_event",
        {
            "run_id": run_id,
            "event_type": "llm_call",
            "correlation_id": "trace-1",
            "parent_event_id": first["event_id"],
            "span_id": "span-2",
        },
    )
    sent = h.sent_to("POST", "/v1/run-events")[-1].body
    assert (sent["correlationId"], sent["parentEventId"], sent["spanId"]) == ("trace-1", first["event_id"], "span-2")
    assert event_links(h, run_id) == [("plan", "trace-1", None), ("llm_call", "trace-1", first["event_id"])]


async def test_emit_events_batch_and_record_run_send_event_links(h: Harness) -> None:
    customer_id = await h.new_customer()
    run_id = await h.new_run(customer_id)
    links = {"correlation_id": "trace-9", "parent_event_id": "evt_root", "span_id": "span-9"}
    await h.ok("drip_emit_events_batch", {"run_id": run_id, "events": [{"event_type": "step", **links}]})
    [batch] = h.sent_to("POST", "/v1/run-events/batch")
    [event] = batch.body["events"]
    assert (event["correlationId"], event["parentEventId"], event["spanId"]) == ("trace-9", "evt_root", "span-9")
    assert "metadata" not in event  # known keys, not folded into metadata
    assert event_links(h, run_id) == [("step", "trace-9", "evt_root")]
    recorded = await h.ok(
        "drip_record_run",
        {
            "customer_id": customer_id,
            "workflow": "wf",
            "events": [{"eventType": "step", "spanId": "s1", "parentEventId": "evt_root"}],
        },
    )
    [sent] = h.sent_to("POST", "/v1/runs/record")
    assert sent.body["events"][0]["spanId"] == "s1"
    assert event_links(h, recorded["run_id"]) == [("step", None, "evt_root")]


async def test_a_link_id_that_is_not_id_like_is_a_validation_error(h: Harness) -> None:
    run_id = await h.new_run(await h.new_customer())
    await h.error("drip_emit_event", {"run_id": run_id, "event_type": "x", "span_id": "has space"}, "VALIDATION_ERROR")
