"""Tenant-scoped state, on SQLite and on a real PostgreSQL: a tenant sees only its own ledger, outbox rows and files.

Two servers (two tenants: two Drip keys) share one sandbox and one state store, as two clients of one
deployment do; everything runs in process through `mcp.Client`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from server_fixtures import result_payload, state_env

from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import OutboxSender
from drip_mcp.api.outbox import Outbox, outbox_scope
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.state import SqliteState, StateStore
from drip_mcp.state.postgres import open_postgres_state
from drip_mcp.tools.context import Services

pytestmark = pytest.mark.anyio

KEY_A = "sk_test_tenantAAAA0001"
KEY_B = "sk_test_tenantBBBB0002"
BASE = "http://sandbox.local/v1"


class Switch(httpx2.AsyncBaseTransport):
    """The sandbox, or (while `down`) a connection error: what a Drip outage looks like to one tenant."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.down:
            raise httpx2.ConnectError("Drip is unreachable", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Tenant:
    client: Client
    link: Switch

    async def ok(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.client.call_tool(name, arguments or {})
        assert not result.is_error, result
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    async def error_code(self, name: str, arguments: dict[str, Any]) -> str:
        result = await self.client.call_tool(name, arguments)
        assert result.is_error
        return str(result_payload(result)["error"]["code"])

    async def ledger_resource(self) -> dict[str, Any]:
        read = await self.client.read_resource("drip://session/ledger")
        text = read.contents[0]
        return dict(json.loads(getattr(text, "text", "")))


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if kind == "sqlite":
        store = SqliteState(tmp_path / "state.db")
        try:
            yield store
        finally:
            store.close()
    else:
        async with open_postgres_state(request.getfixturevalue("postgres_url")) as shared:
            yield shared


@asynccontextmanager
async def two_tenants(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """Tenants A and B: two servers with their own keys over one sandbox, one state store, one outbox."""
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(kind, tmp_path, request))
        outbox: Any = store.outbox if store.outbox is not None else stack.enter_context(Outbox(tmp_path / "o.db"))
        sandbox = await stack.enter_async_context(Sandbox(SandboxConfig(db_path=tmp_path / "s.db")))
        tenants = []
        for key in (KEY_A, KEY_B):
            settings = Settings.load(state_env(), api_key=key, sandbox=True, sandbox_db=tmp_path / "s.db")
            link = Switch(sandbox.transport())
            drip = DripClient(
                ApiKey(key),
                base_url=BASE,
                transport=link,
                retry=RetryPolicy(max_retries=0),
                durable=OutboxSender(outbox, outbox_scope(BASE, ApiKey(key))),
            )
            await stack.enter_async_context(drip)
            server = build_server(settings, drip, services=Services.for_settings(settings, store))
            tenants.append(Tenant(await stack.enter_async_context(Client(server)), link))
        yield tenants[0], tenants[1]


BACKENDS = pytest.mark.parametrize("kind", ["sqlite", "postgresql"])


@BACKENDS
async def test_tenant_b_never_sees_tenant_a_ledger_entries(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with two_tenants(kind, tmp_path, request) as (a, b):
        customer = (await a.ok("drip_create_customer", {"external_customer_id": "shared-1"}))["customer"]["id"]
        await a.ok("drip_track_usage", {"customer_id": customer, "meter": "api_calls", "quantity": 3})
        await a.ok("drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 1})

        a_summary, b_summary = await a.ok("drip_session_summary"), await b.ok("drip_session_summary")
        a_resource, b_resource = await a.ledger_resource(), await b.ledger_resource()

    assert [e["kind"] for e in a_summary["entries"]] == ["usage", "charge"]
    assert [e["kind"] for e in a_resource["entries"]] == ["usage", "charge"]
    assert (b_summary["entries"], b_summary["totals_by_customer"]) == ([], {})
    assert (b_resource["entries"], b_resource["total_charged_usdc"]) == ([], "0.000000")


@BACKENDS
async def test_drip_ping_counts_only_the_tenants_own_outbox_rows(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with two_tenants(kind, tmp_path, request) as (a, b):
        a.link.down = True
        queued = await a.ok("drip_track_usage", {"customer_id": "cus_x", "meter": "api_calls", "quantity": 1})
        a_ping, b_ping = await a.ok("drip_ping"), await b.ok("drip_ping")

    assert queued["status"] == "queued"
    assert (a_ping["outbox_pending"], b_ping["outbox_pending"]) == (1, 0)


@BACKENDS
async def test_a_tenant_cannot_delete_another_tenants_secret_file(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with two_tenants(kind, tmp_path, request) as (a, b):
        created = await b.ok("drip_create_webhook", {"url": "http://127.0.0.1:9/b", "events": ["*"]})
        webhook_id, secret_file = created["webhook"]["id"], anyio.Path(created["secret_file"])
        first = await a.ok("drip_delete_webhook", {"webhook_id": webhook_id, "idempotency_key": "whdel-a-1"})
        retried = await a.error_code("drip_delete_webhook", {"webhook_id": webhook_id, "idempotency_key": "whdel-a-1"})
        never_created = await a.error_code("drip_delete_webhook", {"webhook_id": "wh_never", "idempotency_key": "k2"})
        file_after_a = await secret_file.exists()
        b_retry = await b.ok("drip_delete_webhook", {"webhook_id": webhook_id, "idempotency_key": "whdel-b-1"})
        file_after_b = await secret_file.exists()

    assert first["deleted"] is True  # Drip deleted it (one account), but the file is B's
    assert file_after_a is True
    assert (retried, never_created) == ("NOT_FOUND", "NOT_FOUND")
    assert b_retry["is_duplicate"] is True
    assert file_after_b is False
