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
