"""Hosted mode (--per-request-key): each tenant's usage survives an outage and arrives once, with its own key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from server_fixtures import result_payload
from transport_helpers import serving, streamable_session

from drip_mcp.api import retrying
from drip_mcp.api.outbox import Outbox
from drip_mcp.http import HttpOptions, build_http_app
from drip_mcp.settings import Settings

TENANTS = ("pk_test_hostedTenantA1", "sk_test_hostedTenantB2")


class FlakyDrip:
    """A Drip API that is down until `up`, then records usage (by key) and answers 201."""

    def __init__(self, expected: int) -> None:
        self.up = False
        self.landed: list[tuple[str, str]] = []  # (authorization, idempotencyKey)
        self.expected = expected
        self.all_landed = anyio.Event()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if not self.up:
            raise httpx2.ConnectError("Drip is down", request=request)
        body = json.loads(request.content)
        self.landed.append((request.headers["authorization"], body["idempotencyKey"]))
        if len(self.landed) >= self.expected:
            self.all_landed.set()
        return httpx2.Response(
            201,
            json={
                "success": True,
                "usageEventId": f"u{len(self.landed)}",
                "customerId": body["customerId"],
                "usageType": body["usageType"],
                "quantity": body["quantity"],
            },
        )


@pytest.fixture
def no_backoff_sleep() -> Any:
    retrying.set_testing(True)
    yield
    retrying.set_testing(False)


@pytest.mark.anyio
@pytest.mark.usefixtures("no_backoff_sleep")
async def test_tenant_writes_queued_during_an_outage_arrive_once_with_their_own_key(tmp_path: Path) -> None:
    drip = FlakyDrip(expected=len(TENANTS))
    outbox_path = tmp_path / "outbox.db"
    hosted = Settings(api_key=None, base_url="https://drip.test/v1", max_retries=1, outbox=outbox_path)
    app = build_http_app(
        hosted,
        HttpOptions(per_request_key=True, stateless=True, json_response=True),
        transport=httpx2.MockTransport(drip),
    )
    queued: dict[str, str] = {}
    async with serving(app) as base:
        for key in TENANTS:
            async with streamable_session(f"{base}/mcp", {"Authorization": f"Bearer {key}"}) as session:
                result = await session.call_tool(
                    "drip_track_usage", {"customer_id": "cus_1", "meter": "tokens", "quantity": 10}
                )
                assert result.structured_content is not None
                assert result_payload(result)["status"] == "queued"
                queued[key] = result_payload(result)["idempotency_key"]
        assert drip.landed == []

        drip.up = True
        with anyio.fail_after(20):  # each tenant's drainer retries on its own backoff
            await drip.all_landed.wait()

    assert sorted(drip.landed) == sorted((f"Bearer {key}", queued[key]) for key in TENANTS)
    with Outbox(outbox_path) as outbox:
        counts = outbox.counts()
    assert (counts.pending, counts.dead, counts.sent) == (0, 0, 2)
