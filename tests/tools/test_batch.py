"""drip_track_usage_batch: bounded concurrency, per-event results and keys, progress (issue 8)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client
from server_fixtures import result_payload, state_env

from drip_mcp.api.client import DripClient
from drip_mcp.keys import ApiKey
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.tools.context import Services
from drip_mcp.tools.usage import BATCH_CONCURRENCY, BATCH_LIMIT

KEY = "pk_test_batch_suite_01"


class SlowUpstream(httpx2.AsyncBaseTransport):
    """Answers /usage/internal after a yield, tracking how many requests are in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.keys: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()  # let the other sends start: a scheduling point, not a timer
            body = json.loads(await request.aread())
            self.keys.append(body["idempotencyKey"])
            if body["customerId"] == "missing":
                return httpx2.Response(404, json={"error": "Customer not found", "code": "NOT_FOUND"})
            return httpx2.Response(
                201,
                json={
                    "success": True,
                    "usageEventId": f"u_{len(self.keys)}",
                    "customerId": body["customerId"],
                    "usageType": body["usageType"],
                    "quantity": body["quantity"],
                    "isInternal": True,
                },
            )
        finally:
            self.in_flight -= 1


def events(n: int, **overrides: Any) -> list[dict[str, Any]]:
    return [{"customer_id": "cus_1", "meter": "tokens", "quantity": i + 1, **overrides} for i in range(n)]


async def run_batch(arguments: dict[str, Any], **call_kwargs: Any) -> tuple[Any, SlowUpstream]:
    upstream = SlowUpstream()
    settings = Settings.load(state_env(), api_key=KEY)
    drip = DripClient(ApiKey(KEY), transport=upstream)
    async with drip, Client(build_server(settings, drip, services=Services.for_settings(settings))) as client:
        result = await client.call_tool("drip_track_usage_batch", arguments, **call_kwargs)
    return result, upstream


@pytest.mark.anyio
async def test_batch_sends_every_event_once_with_bounded_concurrency() -> None:
    result, upstream = await run_batch({"events": events(100)})
    out = result_payload(result)
    assert out["recorded"] == 100
    assert [r["index"] for r in out["results"]] == list(range(100))
    assert len(set(upstream.keys)) == 100
    assert {r["idempotency_key"] for r in out["results"]} == set(upstream.keys)
    assert 1 < upstream.peak <= BATCH_CONCURRENCY


@pytest.mark.anyio
async def test_batch_reports_each_failed_event_with_its_error_and_key() -> None:
    batch = events(3)
    batch[1]["customer_id"] = "missing"
    batch[2]["idempotency_key"] = "caller-chosen-key"
    result, upstream = await run_batch({"events": batch})
    out = result_payload(result)
    assert (out["recorded"], out["failed"]) == (2, 1)
    failed = out["results"][1]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "NOT_FOUND"
    assert failed["idempotency_key"] in upstream.keys
    assert out["results"][2]["idempotency_key"] == "caller-chosen-key"


@pytest.mark.anyio
async def test_batch_reports_throttled_monotonic_progress_when_asked() -> None:
    updates: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total))

    result, _ = await run_batch({"events": events(200)}, progress_callback=on_progress)
    assert result_payload(result)["recorded"] == 200
    assert updates[-1] == (200, 200)
    assert [p for p, _ in updates] == sorted(p for p, _ in updates)
    assert 2 <= len(updates) <= 21


@pytest.mark.anyio
async def test_batch_above_the_limit_is_refused_before_anything_is_sent() -> None:
    result, upstream = await run_batch({"events": events(BATCH_LIMIT + 1)})
    assert result.is_error
    assert result_payload(result)["error"]["code"] == "VALIDATION_ERROR"
    assert upstream.keys == []


class GatedUpstream(httpx2.AsyncBaseTransport):
    """Answers the first `answer` usage writes; holds every later one until its caller gives up."""

    def __init__(self, answer: int, hold: int) -> None:
        self.answer, self.hold = answer, hold
        self.answered = 0
        self.held = 0
        self.stalled = anyio.Event()  # `answer` answered and `hold` waiting: the moment to cancel

    def _check(self) -> None:
        if self.answered >= self.answer and self.held >= self.hold:
            self.stalled.set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(await request.aread())
        if self.answered < self.answer:
            self.answered += 1
            self._check()
            return httpx2.Response(
                201,
                json={
                    "success": True,
                    "usageEventId": f"u_{self.answered}",
                    "customerId": body["customerId"],
                    "usageType": body["usageType"],
                    "quantity": body["quantity"],
                    "isInternal": True,
                },
            )
        self.held += 1
        self._check()
        await anyio.Event().wait()  # never answered: only a cancellation ends it
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_a_cancelled_batch_keeps_count_in_the_ledger_and_drip_get_batch_reports_the_rest(tmp_path: Any) -> None:
    from drip_mcp.api.durable import OutboxSender
    from drip_mcp.api.outbox import Outbox, outbox_scope

    upstream = GatedUpstream(answer=5, hold=BATCH_CONCURRENCY)
    settings = Settings.load(state_env(), api_key=KEY)
    with Outbox(tmp_path / "outbox.db") as outbox:
        sender = OutboxSender(outbox, outbox_scope("gated", ApiKey(KEY)))
        drip = DripClient(ApiKey(KEY), transport=upstream, durable=sender)
        server = build_server(settings, drip, services=Services.for_settings(settings))
        async with drip, Client(server) as client:
            async with anyio.create_task_group() as tg:

                async def batch() -> None:
                    await client.call_tool("drip_track_usage_batch", {"events": events(40)})

                tg.start_soon(batch)
                with anyio.fail_after(10):
                    await upstream.stalled.wait()
                tg.cancel_scope.cancel()  # the client gives up: a courtesy notifications/cancelled goes out
            entries: list[Any] = []
            for _ in range(200):  # bounded: each call is a round trip through the server, no timer
                entries = result_payload(await client.call_tool("drip_session_summary", {}))["entries"]
                if entries:
                    break
            batch_id = entries[0]["idempotency_key"].rpartition("-")[0]
            report = result_payload(await client.call_tool("drip_get_batch", {"batch_id": batch_id}))
        pending = outbox.counts().pending
    assert [e["outcome"] for e in entries] == ["recorded"] * 5  # every write that landed, and only those
    assert (report["delivered"], report["queued"], report["failed"]) == (5, BATCH_CONCURRENCY, 0)
    assert len({e["index"] for e in report["events"]}) == 5 + BATCH_CONCURRENCY
    assert pending == BATCH_CONCURRENCY  # the held writes stay queued for the drainer


@pytest.mark.anyio
async def test_drip_get_batch_reports_a_finished_batch_and_refuses_an_unknown_one(tmp_path: Any) -> None:
    from drip_mcp.api.durable import OutboxSender
    from drip_mcp.api.outbox import Outbox, outbox_scope

    settings = Settings.load(state_env(), api_key=KEY)
    upstream = SlowUpstream()
    with Outbox(tmp_path / "outbox.db") as outbox:
        drip = DripClient(ApiKey(KEY), transport=upstream, durable=OutboxSender(outbox, outbox_scope("t", ApiKey(KEY))))
        async with drip, Client(build_server(settings, drip, services=Services.for_settings(settings))) as client:
            batch = events(4)
            batch[2]["customer_id"] = "missing"
            out = result_payload(await client.call_tool("drip_track_usage_batch", {"events": batch}))
            report = result_payload(await client.call_tool("drip_get_batch", {"batch_id": out["batch_id"]}))
            unknown = await client.call_tool("drip_get_batch", {"batch_id": "bat_" + "0" * 24})
    assert (report["delivered"], report["queued"], report["failed"]) == (3, 0, 1)
    assert [(e["index"], e["status"]) for e in report["events"]] == [
        (0, "delivered"),
        (1, "delivered"),
        (2, "failed"),
        (3, "delivered"),
    ]
    assert report["events"][2]["error_code"] == "NOT_FOUND"
    assert unknown.is_error
    assert result_payload(unknown)["error"]["code"] == "NOT_FOUND"
