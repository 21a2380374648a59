"""Runs are written once, whatever is retried: lost responses, replays, repeated ends (issues 4 and 6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from server_fixtures import result_payload, state_env

from drip_mcp.api import retrying
from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import Drainer, OutboxSender
from drip_mcp.api.outbox import Outbox, Queued, outbox_scope
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import DEFAULT_BASE_URL, Settings
from drip_mcp.tools.context import Services

KEY = "sk_test_run_idempotency_1"


class LoseFirstResponse(httpx2.AsyncBaseTransport):
    """Lets the first request to `path` take effect, then loses its response (as a dropped connection)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, path: str) -> None:
        self.inner, self.path, self.lost, self.requests = inner, path, False, 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == self.path:
            self.requests += 1
            if not self.lost:
                self.lost = True
                await response.aread()
                raise httpx2.ReadError("connection dropped after the request was processed")
        return response


@asynccontextmanager
async def stack(tmp_path: Path, lose: str | None = None) -> AsyncIterator[tuple[Client, Sandbox, Any]]:
    settings = Settings.load(state_env(), api_key=KEY, sandbox=True, sandbox_db=tmp_path / "s.db")
    retrying.set_testing(True)
    try:
        async with Sandbox(SandboxConfig(db_path=tmp_path / "s.db")) as sandbox:
            transport: Any = sandbox.transport()
            if lose is not None:
                transport = LoseFirstResponse(transport, lose)
            drip = DripClient(ApiKey(KEY), base_url="http://sandbox.local/v1", transport=transport)
            async with drip, Client(build_server(settings, drip, services=Services.for_settings(settings))) as client:
                yield client, sandbox, transport
    finally:
        retrying.set_testing(False)


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert isinstance(result_payload(result), dict)
    return result_payload(result)


def count_runs(sandbox: Sandbox) -> int:
    return len(sandbox.store._all("SELECT id FROM runs"))


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "path"), [("drip_record_run", "/v1/runs/record"), ("drip_start_run", "/v1/runs")])
async def test_a_run_write_whose_response_was_lost_is_retried_into_the_same_run(
    tmp_path: Path, tool: str, path: str
) -> None:
    async with stack(tmp_path, lose=path) as (client, sandbox, transport):
        customer = (await call(client, "drip_create_customer", external_customer_id="c1"))["customer"]["id"]
        result = await call(client, tool, customer_id=customer, workflow="research_agent")
        assert transport.requests == 2  # the lost attempt and its retry
        assert result["is_duplicate"] is True
        assert result["run_id"]
        assert count_runs(sandbox) == 1
        assert sandbox.store.run(result["run_id"])["id"] == result["run_id"]


@pytest.mark.anyio
async def test_ending_a_run_again_with_the_same_status_is_a_duplicate_and_another_status_a_conflict(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as (client, sandbox, _):
        customer = (await call(client, "drip_create_customer", external_customer_id="c1"))["customer"]["id"]
        run_id = (await call(client, "drip_start_run", customer_id=customer, workflow="wf"))["run_id"]
        first = await call(client, "drip_end_run", run_id=run_id, status="COMPLETED")
        again = await call(
            client, "drip_end_run", run_id=run_id, status="COMPLETED", idempotency_key=first["idempotency_key"]
        )
        assert first["is_duplicate"] is False
        assert again["is_duplicate"] is True
        assert again["ended_at"] == first["ended_at"]
        other = await call(client, "drip_end_run", run_id=run_id, status="FAILED")
        assert other["error"]["status"] == 409
        assert sandbox.store.run(run_id)["status"] == "COMPLETED"


@pytest.mark.anyio
async def test_a_replayed_run_that_already_landed_is_settled_as_sent_not_dead(tmp_path: Path) -> None:
    up = False
    bodies: list[dict[str, Any]] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        if not up:
            return httpx2.Response(503, json={"error": "down", "code": "SERVICE_UNAVAILABLE"})
        bodies.append(json.loads(request.content))
        return httpx2.Response(409, json={"error": "exists", "code": "DUPLICATE_RUN", "existingRunId": "run_1"})

    outbox = Outbox(tmp_path / "outbox.db")
    retrying.set_testing(True)
    try:
        durable = OutboxSender(outbox, outbox_scope(DEFAULT_BASE_URL, ApiKey(KEY)))
        async with DripClient(ApiKey(KEY), transport=httpx2.MockTransport(upstream), durable=durable) as drip:
            with pytest.raises(Queued):
                await drip.record_run(
                    customer_id="c1", workflow="wf", events=[], status="COMPLETED", external_run_id="x", durable=True
                )
            up = True
            deliveries = await Drainer(drip).flush()
    finally:
        retrying.set_testing(False)
    assert [d.outcome for d in deliveries] == ["sent"]
    assert bodies[0]["externalRunId"] == "x"
    assert outbox.counts().dead == 0


@pytest.mark.anyio
async def test_a_confirm_token_cannot_be_redeemed_with_another_tenants_key(tmp_path: Path) -> None:
    settings = Settings.load(state_env(), api_key=KEY, sandbox=True, sandbox_db=tmp_path / "s.db", confirm_charges=True)
    async with Sandbox(SandboxConfig(db_path=tmp_path / "s.db")) as sandbox:
        alice = DripClient(
            ApiKey("pk_test_alice_key_1"), base_url="http://sandbox.local/v1", transport=sandbox.transport()
        )
        mallory = DripClient(
            ApiKey("pk_test_mallory_k1"), base_url="http://sandbox.local/v1", transport=sandbox.transport()
        )
        current = [alice]
        server = build_server(settings, resolve_client=lambda: current[0])
        async with alice, mallory, Client(server) as client:
            customer = (await call(client, "drip_create_customer", external_customer_id="c1"))["customer"]["id"]
            args = {"customer_id": customer, "meter": "api_calls", "quantity": 2}
            preview = await call(client, "drip_charge", **args)
            assert preview["status"] == "confirmation_required"
            current[0] = mallory
            stolen = await call(client, "drip_charge", **args, confirm_token=preview["confirm_token"])
            assert stolen["error"]["code"] == "CONFIRMATION_MISMATCH"
            current[0] = alice
            mine = await call(client, "drip_charge", **args, confirm_token=preview["confirm_token"])
            assert mine["status"] == "charged"
        assert sandbox.store.count_charges(customer) == 1
        assert sandbox.store.balance(customer) == Decimal("100") - Decimal("0.002")
