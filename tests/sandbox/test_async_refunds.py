"""Async charges (PENDING, settled in the background) and refunds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import httpx2
import pytest
from drip import verify_webhook_signature
from sandbox_helpers import PK, SK, new_customer, usage

from drip_mcp.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.anyio


class SdkVerifiedReceiver:
    """Webhook endpoint that keeps only events the Python SDK's verifier accepts."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict[str, object]] = []
        self.rejected = 0
        self._changed = anyio.Event()

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        if not verify_webhook_signature(request.content.decode(), request.headers["X-Drip-Signature"], self.secret):
            self.rejected += 1
            return httpx2.Response(401)
        self.events.append(json.loads(request.content))
        self._changed.set()
        return httpx2.Response(200)

    async def wait_for(self, event_type: str) -> dict[str, object]:
        with anyio.fail_after(5):
            while True:
                for event in self.events:
                    if event["type"] == event_type:
                        return event
                self._changed = anyio.Event()
                await self._changed.wait()


@asynccontextmanager
async def _running(
    receiver: SdkVerifiedReceiver, events: list[str], **config: object
) -> AsyncIterator[tuple[Sandbox, httpx2.AsyncClient]]:
    config.setdefault("webhook_allowed_hosts", ("hooks.example",))  # a made-up host: deliveries are mocked
    sandbox = Sandbox(SandboxConfig(**config), delivery_transport=httpx2.MockTransport(receiver.handle))  # type: ignore[arg-type]
    async with (
        sandbox,
        httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as client,
    ):
        hook = (await client.post("/v1/webhooks", json={"url": "https://hooks.example/d", "events": events})).json()
        receiver.secret = hook["secret"]
        yield sandbox, client


async def test_async_charge_settles_and_charge_succeeded_arrives_verified() -> None:
    receiver = SdkVerifiedReceiver()
    async with _running(receiver, ["charge.succeeded"]) as (sandbox, client):
        customer_id = await new_customer(client)
        accepted = await client.post("/v1/usage/async", json=usage(customer_id, "async-1", quantity=7))
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["charge"]["status"] == "PENDING"
        assert body["charge"]["amountUsdc"] == "0.007000"
        assert body["isDuplicate"] is False
        assert body["message"]
        event = await receiver.wait_for("charge.succeeded")
        assert event["data"]["chargeId"] == body["charge"]["id"]  # type: ignore[index]
        assert event["data"]["status"] == "CONFIRMED"  # type: ignore[index]
        assert receiver.rejected == 0
        charge = (await client.get(f"/v1/charges/{body['charge']['id']}")).json()
        assert charge["status"] == "CONFIRMED"
        assert charge["txHash"].startswith("0x")
        assert sandbox.store.balance(customer_id) == Decimal("99.993")
        replay = (await client.post("/v1/usage/async", json=usage(customer_id, "async-1", quantity=7))).json()
        assert replay["isDuplicate"] is True
        assert replay["charge"]["id"] == body["charge"]["id"]
        assert replay["charge"]["status"] == "CONFIRMED"
        assert sandbox.store.count_charges(customer_id) == 1


async def test_async_charge_fails_at_settlement_when_the_balance_is_short() -> None:
    receiver = SdkVerifiedReceiver()
    async with _running(receiver, ["charge.failed"], starting_balance_usdc=Decimal("0.005")) as (sandbox, client):
        customer_id = await new_customer(client)
        accepted = (await client.post("/v1/usage/async", json=usage(customer_id, "big", quantity=6))).json()
        assert accepted["charge"]["status"] == "PENDING"  # accepted: the balance is checked at settlement
        event = await receiver.wait_for("charge.failed")
        assert event["data"]["reason"] == "INSUFFICIENT_BALANCE"  # type: ignore[index]
        charge = (await client.get(f"/v1/charges/{accepted['charge']['id']}")).json()
        assert charge["status"] == "FAILED"
        assert charge["failureReason"] == "INSUFFICIENT_BALANCE"
        assert sandbox.store.balance(customer_id) == Decimal("0.005")


async def test_settle_pending_can_be_driven_directly(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    first = (await client.post("/v1/usage/async", json=usage(customer_id, "k1", quantity=1))).json()
    second = (await client.post("/v1/usage/async", json=usage(customer_id, "k2", quantity=2))).json()
    assert sandbox.store.pending_charge_ids() == [first["charge"]["id"], second["charge"]["id"]]
    assert sandbox.store.settle_pending() == [first["charge"]["id"], second["charge"]["id"]]
    assert sandbox.store.settle_pending() == []
    assert sandbox.store.balance(customer_id) == Decimal("99.997")


async def test_refund_restores_the_balance_exactly_once() -> None:
    receiver = SdkVerifiedReceiver()
    async with _running(receiver, ["charge.refunded"]) as (sandbox, client):
        customer_id = await new_customer(client)
        charge = (await client.post("/v1/usage", json=usage(customer_id, "r", "tokens", 123_457))).json()["charge"]
        assert charge["amountUsdc"] == "1.234570"
        assert sandbox.store.balance(customer_id) == Decimal("98.765430")
        refund = await client.post(
            f"/v1/charges/{charge['id']}/refund", json={"reason": "merchant_error", "note": "double billed"}
        )
        assert refund.status_code == 200, refund.text
        refunded = refund.json()
        assert refunded["status"] == "REFUNDED"
        assert refunded["refundReason"] == "merchant_error"
        assert refunded["refundNote"] == "double billed"
        assert refunded["refundTxHash"].startswith("0x")
        assert refunded["refundedAt"]
        assert sandbox.store.balance(customer_id) == Decimal("100")
        event = await receiver.wait_for("charge.refunded")
        assert event["data"]["chargeId"] == charge["id"]  # type: ignore[index]
        again = await client.post(f"/v1/charges/{charge['id']}/refund", json={"reason": "customer_request"})
        assert again.status_code == 409
        assert again.json()["code"] == "ALREADY_REFUNDED"
        assert sandbox.store.balance(customer_id) == Decimal("100")
        listed = (await client.get("/v1/charges", params={"status": "REFUNDED"})).json()["data"]
        assert [c["id"] for c in listed] == [charge["id"]]


async def test_refund_validation_keys_and_states(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    pending = (await client.post("/v1/usage/async", json=usage(customer_id, "p"))).json()["charge"]
    bad = await client.post(f"/v1/charges/{pending['id']}/refund", json={"reason": "because"})
    assert bad.status_code == 422
    public = await client.post(f"/v1/charges/{pending['id']}/refund", json={"reason": "fraud_reversal"}, headers=PK)
    assert public.status_code == 409  # public keys may refund (DESIGN); this charge is not settled yet
    assert public.json()["code"] == "CHARGE_NOT_REFUNDABLE"
    not_yet = await client.post(f"/v1/charges/{pending['id']}/refund", json={"reason": "fraud_reversal"})
    assert not_yet.status_code == 409
    assert not_yet.json()["code"] == "CHARGE_NOT_REFUNDABLE"
    assert (await client.post("/v1/charges/nope/refund", json={"reason": "fraud_reversal"})).status_code == 404


async def test_usage_quota_counts_this_months_events(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    await client.post("/v1/usage", json=usage(customer_id, "q1"))
    await client.post("/v1/usage/internal", json=usage(customer_id, "q2"))
    quota = (await client.get("/v1/usage/quota")).json()
    assert quota["used"] == 2
    assert quota["limit"] == quota["remaining"] + 2
    assert quota["exceeded"] is False
    assert set(quota) == {"limit", "used", "remaining", "exceeded", "resetAt", "overagePerEventUsd", "periodStart"}
    assert quota["resetAt"] > quota["periodStart"]
