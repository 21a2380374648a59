"""Proof under faults: durable writes land exactly once through errors, outages and kill -9.

Everything is loopback or in-process and bounded (`anyio.fail_after`). Each test
prints what it measured (``pytest -s tests/test_reliability.py``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process
from mcp import Client
from server_fixtures import result_payload

from drip_mcp.api import retrying
from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import Drainer, OutboxSender
from drip_mcp.api.outbox import Outbox, outbox_scope
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import FaultConfig, Sandbox, SandboxConfig, Store
from drip_mcp.server import build_server
from drip_mcp.settings import Settings

PK = "pk_test_reliability0001"
FAST_BACKOFF = RetryPolicy(base_delay=0.002, max_delay=0.02, max_retry_after=0.02)
OUTAGE_BACKOFF = RetryPolicy(base_delay=0.02, max_delay=0.2, max_retry_after=0.2)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_sleep() -> Iterator[None]:
    retrying.set_testing(True)
    yield
    retrying.set_testing(False)


def _new_customer(store: Store, external_id: str = "agent-user") -> str:
    row = store.create_customer(
        external_customer_id=external_id, onchain_address=None, email=None, is_internal=False, metadata=None
    )
    customer_id: str = row["id"]
    return customer_id


class FaultyWire(httpx2.AsyncBaseTransport):
    """Wraps the sandbox transport: counts faults, can drop before processing or take the API down."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, drop_before: float = 0.0, seed: int = 7) -> None:
        self._inner = inner
        self._random = random.Random(seed)
        self.drop_before = drop_before
        self.down = False
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # idempotency key -> 2xx answers that were not replays
        self.replays = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if self.down:
            self.faults["down"] += 1
            raise httpx2.ConnectError("upstream down (test)", request=request)
        if self.drop_before and self._random.random() < self.drop_before:
            self.faults["drop-before"] += 1
            raise httpx2.ConnectError("dropped before processing (test)", request=request)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.RemoteProtocolError:
            self.faults["drop-after"] += 1
            raise
        if response.status_code >= 400:
            self.faults[str(response.status_code)] += 1
            return response
        if request.method != "GET":
            content = await response.aread()
            body = json.loads(content)
            if body.get("isDuplicate"):
                self.replays += 1
            elif key := json.loads(request.content).get("idempotencyKey"):
                self.delivered[key] += 1
            return httpx2.Response(response.status_code, headers=response.headers, content=content)
        return response


@asynccontextmanager
async def _stack(
    tmp_path: Path,
    faults: FaultConfig | None,
    *,
    drop_before: float = 0.0,
    retries: int = 1,
    backoff: RetryPolicy = FAST_BACKOFF,
) -> AsyncIterator[tuple[Sandbox, FaultyWire, Outbox, Client, DripClient]]:
    async with Sandbox(SandboxConfig(db_path=tmp_path / "sandbox.db", faults=faults)) as sandbox:
        wire = FaultyWire(sandbox.transport(), drop_before=drop_before)
        outbox = Outbox(tmp_path / "outbox.db", backoff=backoff)
        client = DripClient(
            ApiKey(PK),
            base_url="http://sandbox.local/v1",
            retry=RetryPolicy(max_retries=retries),
            transport=wire,
            durable=OutboxSender(outbox, outbox_scope("http://sandbox.local/v1", ApiKey(PK))),
        )
        settings = Settings.load({"DRIP_API_KEY": PK})
        try:
            async with client, Client(build_server(settings, client)) as mcp:
                yield sandbox, wire, outbox, mcp, client
        finally:
            outbox.close()


async def _wait_drained(outbox: Outbox, within: float = 30.0) -> float:
    """Poll the store (a drainer, maybe in another process, empties it) until nothing is pending."""
    started = time.perf_counter()
    with anyio.fail_after(within):
        while outbox.counts().pending:  # noqa: ASYNC110 - the condition lives in SQLite, not in this process
            await anyio.sleep(0.005)
    return time.perf_counter() - started


def _ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result_payload(result)
    assert result.structured_content is not None
    content: dict[str, Any] = result_payload(result)
    return content


# --- 1. 1,000 calls under ~30% injected faults ------------------------------------------------------


@pytest.mark.anyio
async def test_1000_track_usage_calls_under_30_percent_faults_land_exactly_once(tmp_path: Path) -> None:
    calls = 1000
    faults = FaultConfig(
        failure_rate=0.2,
        statuses=(500, 502, 503, 429),
        retry_after_s=0.001,
        drop_rate=0.08,
        drop_after_processing=True,
        latency_s=(0.0, 0.002),
        seed=20261101,
    )
    async with _stack(tmp_path, faults, drop_before=0.05) as (sandbox, wire, outbox, mcp, client):
        customer = _new_customer(sandbox.store)
        results: list[dict[str, Any]] = []
        limiter = anyio.Semaphore(16)

        async def call(i: int) -> None:
            async with limiter:
                args = {"customer_id": customer, "meter": "api_calls", "quantity": 1, "metadata": {"i": i}}
                results.append(_ok(await mcp.call_tool("drip_track_usage", args)))

        started = time.perf_counter()
        with anyio.fail_after(45):
            async with anyio.create_task_group() as tg:
                tg.start_soon(Drainer(client, idle_s=0.05).run)
                async with anyio.create_task_group() as callers:
                    for i in range(calls):
                        callers.start_soon(call, i)
                calls_s = time.perf_counter() - started
                queued_at_end = outbox.counts().pending
                drain_s = await _wait_drained(outbox)
                tg.cancel_scope.cancel()

        statuses = Counter(r["status"] for r in results)
        acked = {r["idempotency_key"] for r in results}
        landed = sandbox.store.usage_idempotency_keys()
        stored_events = sandbox.store.count_usage_events()
        counts = outbox.counts()
        fault_total = sum(wire.faults.values())
        print(
            f"\n[reliability-1] calls={calls} recorded={statuses['recorded']} queued={statuses['queued']} "
            f"http_requests={wire.requests} injected_faults={fault_total} "
            f"({fault_total / wire.requests:.0%}: {dict(wire.faults)}) replays_absorbed={wire.replays} "
            f"events_landed={len(landed)} duplicate_keys={len(landed) - len(set(landed))} "
            f"pending_when_calls_ended={queued_at_end} calls_time={calls_s:.2f}s drain_time={drain_s:.3f}s"
        )
    assert len(results) == calls
    assert set(statuses) <= {"recorded", "queued"}
    assert statuses["queued"] > 0, "the faults never outlasted the retries: the outbox path was not exercised"
    assert 0.25 <= fault_total / wire.requests <= 0.40
    assert wire.faults["drop-after"] > 0
    assert wire.faults["429"] > 0
    assert wire.faults["drop-before"] > 0
    assert len(acked) == calls
    assert len(landed) == len(set(landed)) == calls
    assert set(landed) == acked
    assert stored_events == calls
    assert max(wire.delivered.values()) == 1
    assert (counts.pending, counts.dead, counts.sent) == (0, 0, calls)


# --- 2. kill -9 mid-run, restart, drain -------------------------------------------------------------


class StdioServer:
    """``python -m drip_mcp --sandbox`` spoken to as raw newline-delimited JSON-RPC."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self._buffer = b""

    @classmethod
    async def start(cls, db: Path, outbox: Path, *, faults: dict[str, str] | None = None) -> StdioServer:
        env = {**os.environ, "PYTHONPATH": str(REPO), **(faults or {})}
        args = [sys.executable, "-m", "drip_mcp", "--sandbox", "--sandbox-db", str(db), "--outbox", str(outbox)]
        args += ["--max-retries", "1"]
        server = cls(await anyio.open_process(args, env=env, stderr=None))
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": "init",
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "reliability-test", "version": "0"},
                },
            }
        )
        reply = await server.receive()
        assert reply.get("id") == "init", reply
        assert "result" in reply, reply
        await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return server

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            self._buffer += await self.process.stdout.receive()
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    async def call(self, request_id: int, name: str, arguments: dict[str, Any]) -> None:
        params = {"name": name, "arguments": arguments}
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


@pytest.mark.slow
@pytest.mark.anyio
async def test_kill_9_mid_run_then_restart_delivers_every_acknowledged_event_once(tmp_path: Path) -> None:
    db, outbox_path = tmp_path / "sandbox.db", tmp_path / "outbox.db"
    store = Store(db)
    customer = _new_customer(store)
    store.close()
    total, kill_after = 400, 150
    acked: dict[str, str] = {}

    # The first life runs with latency and faults (so writes are in flight and queued at the kill);
    # the second with none.
    faults = {
        "DRIP_SANDBOX_LATENCY_MS": "1-8",
        "DRIP_SANDBOX_FAULT_RATE": "0.2",
        "DRIP_SANDBOX_DROP_RATE": "0.05",
        "DRIP_SANDBOX_RETRY_AFTER_S": "0.01",
    }
    with anyio.fail_after(40):
        server = await StdioServer.start(db, outbox_path, faults=faults)
        started = time.perf_counter()

        async def feed() -> None:
            for i in range(total):
                args = {"customer_id": customer, "meter": "api_calls", "quantity": 1, "idempotency_key": f"kill-{i}"}
                await server.call(i, "drip_track_usage", args)

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            while len(acked) < kill_after:
                reply = await server.receive()
                if "id" not in reply:
                    continue  # a notification
                result = reply["result"]
                assert not result.get("isError"), result
                acked[result["structuredContent"]["idempotency_key"]] = result["structuredContent"]["status"]
            server.process.send_signal(signal.SIGKILL)
            tg.cancel_scope.cancel()
        await server.process.wait()
        assert server.process.returncode == -signal.SIGKILL
        killed_at = time.perf_counter() - started

        with Outbox(outbox_path) as box:
            left = box.counts()
            stranded = [e for e in box.entries(status="pending", limit=total) if e.lease_owner]
        store = Store(db)
        landed_before_restart = len(store.usage_idempotency_keys())
        store.close()

        restart = time.perf_counter()
        server = await StdioServer.start(db, outbox_path)
        try:
            with Outbox(outbox_path) as box:
                drain_s = await _wait_drained(box)
                after = box.counts()
        finally:
            assert server.process.stdin is not None
            await server.process.stdin.aclose()
            with anyio.fail_after(10):
                await server.process.wait()
        restart_s = time.perf_counter() - restart

    store = Store(db)
    landed = store.usage_idempotency_keys()
    store.close()
    requested = {f"kill-{i}" for i in range(total)}
    print(
        f"\n[reliability-2] requests_written={total} acknowledged_before_kill={len(acked)} "
        f"(statuses {dict(Counter(acked.values()))}) killed_after={killed_at:.2f}s "
        f"outbox_at_kill={{pending: {left.pending}, sent: {left.sent}}} leased_by_dead_process={len(stranded)} "
        f"landed_before_restart={landed_before_restart} landed_after_drain={len(landed)} "
        f"duplicates={len(landed) - len(set(landed))} lost_acknowledged={len(set(acked) - set(landed))} "
        f"restart+drain={restart_s:.2f}s (drain wait {drain_s:.3f}s)"
    )
    assert len(acked) >= kill_after
    assert set(acked) <= set(landed), "an acknowledged event was lost"
    assert len(landed) == len(set(landed)), "an event landed twice"
    assert set(landed) <= requested
    assert after.pending == 0
    assert after.dead == 0
    # Every event the outbox had persisted (acknowledged or in flight at the kill) was delivered.
    with Outbox(outbox_path) as box:
        persisted = {e.idempotency_key for e in box.entries(limit=total)}
    # Persist-before-send: nothing landed that the outbox had not stored first, and all it stored landed.
    assert persisted == set(landed)
    assert set(acked) <= persisted
    # The kill must strand work (stored, not delivered), or this test proves nothing about restarts.
    assert left.pending > 0
    assert len(landed) > landed_before_restart


# --- 3. upstream down entirely, then back ---------------------------------------------------------


@pytest.mark.anyio
async def test_calls_are_queued_while_drip_is_down_and_delivered_exactly_once_when_it_returns(
    tmp_path: Path,
) -> None:
    async with _stack(tmp_path, None, retries=2, backoff=OUTAGE_BACKOFF) as (sandbox, wire, outbox, mcp, client):
        customer = _new_customer(sandbox.store)
        run = _ok(await mcp.call_tool("drip_start_run", {"customer_id": customer, "workflow": "outage_agent"}))
        drainer = Drainer(client, idle_s=0.05)
        before = set(wire.delivered)  # the workflow and the run, created while Drip was up
        async with anyio.create_task_group() as tg:
            wire.down = True
            down_at = time.perf_counter()
            tg.start_soon(drainer.run)
            usage = [
                _ok(
                    await mcp.call_tool("drip_track_usage", {"customer_id": customer, "meter": "tokens", "quantity": 5})
                )
                for _ in range(30)
            ]
            events = [
                _ok(await mcp.call_tool("drip_emit_event", {"run_id": run["run_id"], "event_type": "llm_call"}))
                for _ in range(10)
            ]
            batch = _ok(
                await mcp.call_tool(
                    "drip_track_usage_batch",
                    {"events": [{"customer_id": customer, "meter": "tokens", "quantity": 1} for _ in range(5)]},
                )
            )
            charge = await mcp.call_tool("drip_charge", {"customer_id": customer, "meter": "tokens", "quantity": 1})
            pending_while_down = outbox.counts().pending
            down_s = time.perf_counter() - down_at
            attempts_while_down = wire.faults["down"]
            wire.down = False
            drainer.wake()
            drain_s = await _wait_drained(outbox)
            tg.cancel_scope.cancel()

        queued_keys = [r["idempotency_key"] for r in usage + events] + [r["idempotency_key"] for r in batch["results"]]
        run_events = sandbox.store.run_events(run["run_id"], after_seq=0, limit=100)
        landed_usage = sandbox.store.usage_idempotency_keys()
        final = outbox.counts()
        print(
            f"\n[reliability-3] queued_while_down={pending_while_down} attempts_refused_while_down="
            f"{attempts_while_down} usage_landed={len(landed_usage)} run_events_landed={len(run_events)} "
            f"deliveries_per_key_max={max(wire.delivered.values())} outage_time={down_s:.2f}s drain_time={drain_s:.3f}s"
        )
    assert {r["status"] for r in usage + events} == {"queued"}
    assert (batch["queued"], batch["failed"]) == (5, 0)
    assert charge.is_error
    assert result_payload(charge)["error"]["code"] == "NETWORK_ERROR"  # money is never queued
    assert pending_while_down == 45
    assert sorted(landed_usage) == sorted(k for k in queued_keys if k.startswith(("track_", "bat_")))
    assert len(landed_usage) == 35
    assert len(run_events) == 10
    assert all(wire.delivered[k] == 1 for k in queued_keys)
    assert set(wire.delivered) - before == set(queued_keys)
    assert (final.sent, final.dead) == (45, 0)
