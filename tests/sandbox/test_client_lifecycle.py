"""DripClient drives a whole billing lifecycle against the sandbox, ending in a signed webhook delivery
to a receiver listening on 127.0.0.1 that verifies the signature (issue 3)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from transport_helpers import serving

from drip_mcp.api.client import DripClient
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.signing import SIGNATURE_HEADER, verify


class Receiver:
    """A webhook endpoint that keeps the events whose signature verifies with the current secret."""

    def __init__(self) -> None:
        self.secret = ""
        self.verified: list[dict[str, Any]] = []
        self.rejected = 0
        self.charge_seen = anyio.Event()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if not verify(body, request.headers.get(SIGNATURE_HEADER, ""), self.secret):
            self.rejected += 1
            return Response(status_code=401)
        event = json.loads(body)
        self.verified.append(event)
        if event["type"] == "charge.succeeded":
            self.charge_seen.set()
        return Response(status_code=200)


@pytest.mark.anyio
async def test_client_lifecycle_ends_in_a_verified_signed_delivery(tmp_path: Path) -> None:
    receiver = Receiver()
    async with serving(receiver.app) as receiver_url, Sandbox(SandboxConfig(db_path=tmp_path / "s.db")) as sandbox:
        drip = DripClient(
            ApiKey("sk_test_lifecycle_01"), base_url="http://sandbox.local/v1", transport=sandbox.transport()
        )
        async with drip:
            created, secret = await drip.create_webhook_with_secret(
                url=f"{receiver_url}/hook", events=["charge.succeeded", "usage.recorded"]
            )
            receiver.secret = secret.secret
            assert secret.secret.startswith("whsec_")

            customer = (await drip.create_customer(external_customer_id="lifecycle-1")).data
            tracked = await drip.track_usage(customer_id=customer.id, meter="api_calls", quantity=Decimal(7))
            assert tracked.data.quantity == 7
            before = (await drip.get_balance(customer.id)).available_usdc
            charged = await drip.charge(customer_id=customer.id, meter="tokens", quantity=Decimal(1500))
            assert charged.data.charge is not None
            assert charged.data.charge.amount_usdc == Decimal("0.015")
            after = (await drip.get_balance(customer.id)).available_usdc
            assert before - after == Decimal("0.015")

            charges = await drip.list_charges(customer_id=customer.id)
            assert [c.id for c in charges.data] == [charged.data.charge.id]

            run = (
                await drip.record_run(
                    customer_id=customer.id,
                    workflow="lifecycle_agent",
                    events=[{"eventType": "llm_call", "quantity": 2}, {"eventType": "tool_call"}],
                    status="COMPLETED",
                )
            ).data
            assert run.events.created == 2
            timeline = await drip.get_run_timeline(run.run.id)
            assert [e.event_type for e in timeline.events] == ["llm_call", "tool_call"]
            assert timeline.status == "COMPLETED"

            with anyio.fail_after(10):
                await receiver.charge_seen.wait()

    charge_events = [e for e in receiver.verified if e["type"] == "charge.succeeded"]
    assert len(charge_events) == 1
    assert receiver.rejected == 0
    assert created.data.id
