"""A fleet: two drip-mcp HTTP processes (two hosts, each with its own state directory) sharing one PostgreSQL
state store (``--state-url``) and one sandbox database, over loopback.

Budgets are reserved atomically across the fleet, tenants stay isolated on every host, a confirm token
charges once wherever it is redeemed, and a killed host's queued rows are delivered by the other, once.
Waiting on another process is unavoidable in two places; both poll with bounded deadlines and say so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import ClientSession
from server_fixtures import result_payload
from transport_helpers import MCP_HEADERS, drip_mcp_process, streamable_session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEY_A = "sk_test_fleetTenantA0001"
KEY_B = "sk_test_fleetTenantB0002"
HTTP = ("--transport", "streamable-http", "--stateless", "--json-response")


def child_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(DRIP_MCP_STATE_DIR=str(state_dir), PYTHONPATH=str(Path(__file__).resolve().parents[2]), **extra)
    return env


@asynccontextmanager
async def host(
    tmp_path: Path, name: str, state_url: str, *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[Any, str]]:
    """One drip-mcp process ("host") on the shared sandbox and state store; yields (process, base URL)."""
    argv = ("--sandbox", "--sandbox-db", str(tmp_path / "sandbox.db"), *HTTP, "--state-url", state_url, *args)
    async with drip_mcp_process(*argv, env=child_env(tmp_path / name, **(env or {}))) as (process, port, _):
        yield process, f"http://127.0.0.1:{port}"


def structured(result: Any) -> dict[str, Any]:
    return dict(result_payload(result))  # an error's structure is the JSON of its text block


async def call(session: ClientSession, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return structured(await session.call_tool(name, arguments or {}))


def outcome(result: dict[str, Any]) -> str:
    return str(result["error"]["code"]) if "error" in result else str(result["status"])


@asynccontextmanager
async def sessions(*targets: tuple[str, str | None]) -> AsyncIterator[list[ClientSession]]:
    """One MCP session per (base URL, Drip key or None)."""
    async with AsyncExitStack() as stack:
        opened = []
        for base, key in targets:
            headers = {"Authorization": f"Bearer {key}"} if key else None
            opened.append(await stack.enter_async_context(streamable_session(f"{base}/mcp", headers)))
        yield opened


async def test_forty_charges_over_two_hosts_under_one_tenant_budget_give_exactly_ten_and_tenants_stay_apart(
    tmp_path: Path, postgres_url: str
) -> None:
    args = ("--per-request-key", "--session-budget-usdc", "0.010")
    async with (
        host(tmp_path, "host1", postgres_url, *args) as (_, one),
        host(tmp_path, "host2", postgres_url, *args) as (_, two),
        sessions((one, KEY_A), (two, KEY_A), (one, KEY_B), (two, KEY_B)) as (a1, a2, b1, b2),
    ):
        customer = (await call(a1, "drip_create_customer", {"external_customer_id": "fleet-1"}))["customer"]["id"]
        charge = {"customer_id": customer, "meter": "api_calls", "quantity": 1}
        outcomes: list[str] = []

        async def charge_on(session: ClientSession) -> None:
            outcomes.append(outcome(await call(session, "drip_charge", charge)))

        with anyio.fail_after(45):
            async with anyio.create_task_group() as group:
                for i in range(40):
                    group.start_soon(charge_on, a1 if i % 2 else a2)
        a_summary_on_two = await call(a2, "drip_session_summary")
        b_summary_on_one, b_summary_on_two = (
            await call(b1, "drip_session_summary"),
            await call(b2, "drip_session_summary"),
        )
        b_ledger = await b2.read_resource("drip://session/ledger")
        b_charge = outcome(await call(b1, "drip_charge", charge))  # B's budget is B's own

    assert sorted(outcomes) == ["SPEND_CAP_EXCEEDED"] * 30 + ["charged"] * 10
    assert a_summary_on_two["total_charged_usdc"] == "0.010000"
    assert a_summary_on_two["budget_remaining_usdc"] == "0.000000"
    assert [e["outcome"] for e in a_summary_on_two["entries"]].count("charged") == 10
    for summary in (b_summary_on_one, b_summary_on_two):
        assert (summary["entries"], summary["total_charged_usdc"]) == ([], "0.000000")
    assert customer not in getattr(b_ledger.contents[0], "text", "")
    assert b_charge == "charged"


async def test_a_confirm_token_redeemed_on_both_hosts_at_once_charges_once(tmp_path: Path, postgres_url: str) -> None:
    env = {"DRIP_API_KEY": KEY_A}
    async with (
        host(tmp_path, "host1", postgres_url, "--confirm-charges", env=env) as (_, one),
        host(tmp_path, "host2", postgres_url, "--confirm-charges", env=env) as (_, two),
        sessions((one, None), (two, None)) as (s1, s2),
    ):
        customer = (await call(s1, "drip_create_customer", {"external_customer_id": "fleet-2"}))["customer"]["id"]
        charge = {"customer_id": customer, "meter": "api_calls", "quantity": 1}
        preview = await call(s1, "drip_charge", charge)
        redeemed: list[str] = []

        async def redeem(session: ClientSession) -> None:
            result = await call(session, "drip_charge", {**charge, "confirm_token": preview["confirm_token"]})
            redeemed.append(outcome(result))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(redeem, s1)
                group.start_soon(redeem, s2)

    assert preview["status"] == "confirmation_required"
    assert sorted(redeemed) == ["CONFIRMATION_REUSED", "charged"]


async def call_until_host_dies(http: httpx2.AsyncClient, base: str, usage: dict[str, Any]) -> None:
    """A stateless tools/call whose host is killed mid-way: its answer never comes (the connection drops)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "drip_track_usage", "arguments": usage},
    }
    with contextlib.suppress(httpx2.TransportError):
        await http.post(f"{base}/mcp", json=body, headers={**MCP_HEADERS, "Mcp-Protocol-Version": "2025-11-25"})


def _rows(url: str) -> list[tuple[str, str, int, str | None]]:
    with psycopg.connect(url) as conn:
        return [
            (str(k), str(s), int(a), o)
            for k, s, a, o in conn.execute(
                "SELECT idempotency_key, status, attempts, lease_owner FROM outbox ORDER BY id"
            ).fetchall()
        ]


async def poll(done: Callable[[list[tuple[str, str, int, str | None]]], bool], url: str, timeout_s: float) -> None:
    """Wait until `done(outbox rows)`, reading the shared outbox every 50 ms, for at most `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while True:
            if done(await anyio.to_thread.run_sync(_rows, url)):
                return
            await anyio.sleep(0.05)


async def test_rows_held_by_a_killed_host_are_delivered_once_by_the_other_within_thirty_seconds(
    tmp_path: Path, postgres_url: str
) -> None:
    keys = [f"fleet-usage-{i}" for i in range(5)]
    # Host 1's sandbox answers after a minute: its writes are stored, leased to it, and in flight when it dies.
    slow = {"DRIP_API_KEY": KEY_A, "DRIP_SANDBOX_LATENCY_MS": "60000"}
    async with host(tmp_path, "host2", postgres_url, env={"DRIP_API_KEY": KEY_A}) as (_, two):
        async with sessions((two, None)) as (s2,):
            customer = (await call(s2, "drip_create_customer", {"external_customer_id": "fleet-3"}))["customer"]["id"]
        async with (
            host(tmp_path, "host1", postgres_url, env=slow) as (doomed, one),
            httpx2.AsyncClient(timeout=120) as http,
            anyio.create_task_group() as calls,
        ):
            for key in keys:
                usage = {"customer_id": customer, "meter": "api_calls", "quantity": 1, "idempotency_key": key}
                calls.start_soon(call_until_host_dies, http, one, usage)
            # Bounded poll (another process's progress): until host 1 holds all five rows.
            await poll(lambda rows: sum(owner is not None for *_, owner in rows) == len(keys), postgres_url, 10)
            doomed.kill()  # SIGKILL: no cleanup, its connections just drop
            killed_at = time.monotonic()
            calls.cancel_scope.cancel()
        # Bounded poll (another process's progress): host 2 delivers once the dead holder's leases lapse.
        await poll(lambda rows: all(status == "sent" for _, status, *_ in rows), postgres_url, 30)
        delivered_after = time.monotonic() - killed_at

    rows = _rows(postgres_url)
    assert sorted((k, s, a) for k, s, a, _ in rows) == [(k, "sent", 1) for k in keys]
    assert delivered_after < 30
    with sqlite3.connect(tmp_path / "sandbox.db") as db:
        landed = [
            r[0]
            for r in db.execute("SELECT idempotency_key FROM usage_events WHERE idempotency_key LIKE 'fleet-usage-%'")
        ]
    assert sorted(landed) == keys


async def test_a_per_request_key_tenants_stranded_rows_are_delivered_by_a_host_it_never_visited(
    tmp_path: Path, postgres_url: str
) -> None:
    keys = [f"fleet-stranded-{i}" for i in range(3)]
    sealed = {"DRIP_MCP_STATE_KEY": "fleet-operator-key-for-tests"}
    args = ("--per-request-key",)
    async with host(tmp_path, "host2", postgres_url, *args, env=sealed) as (_, two):
        async with sessions((two, KEY_B)) as (b2,):  # B only: tenant A never connects to host 2
            customer = (await call(b2, "drip_create_customer", {"external_customer_id": "fleet-4"}))["customer"]["id"]
        slow = {**sealed, "DRIP_SANDBOX_LATENCY_MS": "60000"}
        async with (
            host(tmp_path, "host1", postgres_url, *args, env=slow) as (doomed, one),
            httpx2.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {KEY_A}"}) as http,
            anyio.create_task_group() as calls,
        ):
            for key in keys:
                usage = {"customer_id": customer, "meter": "api_calls", "quantity": 1, "idempotency_key": key}
                calls.start_soon(call_until_host_dies, http, one, usage)
            # Bounded poll (another process's progress): until host 1 holds all of A's rows.
            await poll(lambda rows: sum(owner is not None for *_, owner in rows) == len(keys), postgres_url, 10)
            doomed.kill()
            calls.cancel_scope.cancel()
        # Bounded poll: host 2 opens A's sealed key and delivers A's rows once the dead holder's leases lapse.
        await poll(lambda rows: all(status == "sent" for _, status, *_ in rows), postgres_url, 30)

    assert sorted((k, s, a) for k, s, a, _ in _rows(postgres_url)) == [(k, "sent", 1) for k in keys]
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT sealed FROM tenant_keys").fetchall()
    assert stored
    assert all(KEY_A.encode() not in bytes(row[0]) for row in stored)
