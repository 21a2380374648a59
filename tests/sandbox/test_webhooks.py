from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
import httpx2
import pytest
from sandbox_helpers import PK, SK, new_customer, usage

from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.signing import verify

pytestmark = pytest.mark.anyio

# These tests post to made-up https hosts (delivered through a mock transport), which the sandbox refuses by default.
ALLOWED = ("hooks.example", "x.example")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(starting_balance_usdc=Decimal("100"), webhook_allowed_hosts=ALLOWED))


class Receiver:
    """A webhook endpoint behind an httpx2.MockTransport that verifies signatures."""

    def __init__(self, failures_before_success: int = 0) -> None:
        self.secret = ""
        self.failures_left = failures_before_success
        self.events: list[dict[str, object]] = []
        self.attempts = 0
        self.arrived = anyio.Event()
        self.wanted = 1

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts += 1
        if self.failures_left:
            self.failures_left -= 1
            return httpx2.Response(500)
        if not verify(request.content, request.headers["X-Drip-Signature"], self.secret):
            return httpx2.Response(401)
        self.events.append(json.loads(request.content))
        if len(self.events) >= self.wanted:
            self.arrived.set()
        return httpx2.Response(200)


@asynccontextmanager
async def _sandboxed(receiver: Receiver, **config: object) -> AsyncIterator[tuple[Sandbox, httpx2.AsyncClient]]:
    sandbox = Sandbox(
        SandboxConfig(webhook_retry_delays_s=(0.01, 0.01), webhook_allowed_hosts=ALLOWED, **config),  # type: ignore[arg-type]
        delivery_transport=httpx2.MockTransport(receiver.handle),
    )
    async with (
        sandbox,
        httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as client,
    ):
        yield sandbox, client


async def _create_webhook(
    client: httpx2.AsyncClient, events: list[str], url: str = "https://hooks.example/drip"
) -> dict[str, str]:
    response = await client.post("/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def test_charge_delivers_signed_events_to_subscribers() -> None:
    receiver = Receiver()
    async with _sandboxed(receiver) as (_sandbox, client):
        hook = await _create_webhook(client, ["charge.succeeded", "usage.recorded"])
        receiver.secret = hook["secret"]
        receiver.wanted = 2
        customer_id = await new_customer(client)
        charge = (await client.post("/v1/usage", json=usage(customer_id, "k", quantity=5))).json()
        with anyio.fail_after(5):
            await receiver.arrived.wait()
        assert sorted(str(event["type"]) for event in receiver.events) == ["charge.succeeded", "usage.recorded"]
        succeeded = next(e for e in receiver.events if e["type"] == "charge.succeeded")
        assert set(succeeded) == {"id", "type", "createdAt", "data"}
        assert succeeded["data"]["chargeId"] == charge["charge"]["id"]  # type: ignore[index]
        stats = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["stats"]
        assert stats["delivered"] == 2


async def test_wildcard_receives_customer_created_and_balance_low() -> None:
    receiver = Receiver()
    async with _sandboxed(receiver, starting_balance_usdc=Decimal("1")) as (_sandbox, client):
        hook = await _create_webhook(client, ["*"])
        receiver.secret = hook["secret"]
        receiver.wanted = 4
        customer_id = await new_customer(client)
        await client.post("/v1/usage", json=usage(customer_id, "k", quantity=950))
        with anyio.fail_after(5):
            await receiver.arrived.wait()
        types = sorted(str(event["type"]) for event in receiver.events)
        assert types == ["charge.succeeded", "customer.balance.low", "customer.created", "usage.recorded"]
        low = next(e for e in receiver.events if e["type"] == "customer.balance.low")
        assert low["data"] == {"customerId": customer_id, "balanceUsdc": "0.050000", "thresholdUsdc": "0.100000"}


async def test_failed_attempts_are_retried_then_delivered() -> None:
    receiver = Receiver(failures_before_success=2)
    async with _sandboxed(receiver) as (sandbox, client):
        hook = await _create_webhook(client, ["customer.created"])
        receiver.secret = hook["secret"]
        await new_customer(client)
        with anyio.fail_after(5):
            await receiver.arrived.wait()
        assert receiver.attempts == 3
        [delivery] = sandbox.store.list_deliveries(hook["id"])
        assert delivery["attempts"] == 3
        assert delivery["status"] == "DELIVERED"


async def test_deliveries_wait_as_pending_until_a_worker_runs() -> None:
    receiver = Receiver()
    sandbox = Sandbox(
        SandboxConfig(webhook_allowed_hosts=ALLOWED), delivery_transport=httpx2.MockTransport(receiver.handle)
    )
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as client:
        hook = await _create_webhook(client, ["customer.created"])
        receiver.secret = hook["secret"]
        await new_customer(client)
        assert [d["status"] for d in sandbox.store.list_deliveries()] == ["PENDING"]
        async with sandbox:
            with anyio.fail_after(5):
                await receiver.arrived.wait()
    assert receiver.events[0]["type"] == "customer.created"


async def test_test_endpoint_reports_delivered_and_failed() -> None:
    receiver = Receiver()
    async with _sandboxed(receiver) as (_sandbox, client):
        hook = await _create_webhook(client, ["charge.succeeded"])
        receiver.secret = hook["secret"]
        result = (await client.post(f"/v1/webhooks/{hook['id']}/test")).json()
        assert result["status"] == "DELIVERED"
        assert result["responseCode"] == 200
        assert result["deliveryId"]
        assert receiver.events[-1]["type"] == "webhook.test"
        receiver.secret = "whsec_wrong"
        failed = (await client.post(f"/v1/webhooks/{hook['id']}/test")).json()
        assert failed["status"] == "FAILED"
        assert failed["responseCode"] == 401


async def test_rotate_secret_changes_the_signing_secret() -> None:
    receiver = Receiver()
    async with _sandboxed(receiver) as (_sandbox, client):
        hook = await _create_webhook(client, ["*"])
        rotated = (await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != hook["secret"]
        receiver.secret = hook["secret"]
        assert (await client.post(f"/v1/webhooks/{hook['id']}/test")).json()["status"] == "FAILED"
        receiver.secret = rotated["secret"]
        assert (await client.post(f"/v1/webhooks/{hook['id']}/test")).json()["status"] == "DELIVERED"


async def test_webhook_crud_and_secret_shown_only_on_create(client: httpx2.AsyncClient) -> None:
    hook = await _create_webhook(client, ["charge.succeeded"], url="http://127.0.0.1:9/hook")
    assert hook["secret"].startswith("whsec_")
    assert len(hook["secret"]) >= len("whsec_") + 32
    fetched = (await client.get(f"/v1/webhooks/{hook['id']}")).json()
    assert "secret" not in fetched
    assert fetched["events"] == ["charge.succeeded"]
    listed = (await client.get("/v1/webhooks")).json()
    assert listed["count"] == 1
    assert "secret" not in listed["data"][0]
    deleted = await client.delete(f"/v1/webhooks/{hook['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example/drip", "ftp://127.0.0.1/x", "https://", "not a url", "http://10.0.0.1/hook"],
)
async def test_non_https_non_loopback_urls_are_rejected(client: httpx2.AsyncClient, url: str) -> None:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 422
    assert response.json()["details"][0]["path"] == "url"


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/h", "http://127.0.0.5/h", "http://[::1]:9/h", "https://x.example/h"]
)
async def test_https_and_loopback_http_urls_are_accepted(client: httpx2.AsyncClient, url: str) -> None:
    assert (await client.post("/v1/webhooks", json={"url": url, "events": ["*"]})).status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/x"),
        ("DELETE", "/v1/webhooks/x"),
        ("POST", "/v1/webhooks/x/test"),
        ("POST", "/v1/webhooks/x/rotate-secret"),
    ],
)
async def test_public_key_on_webhook_routes_is_403(client: httpx2.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, headers=PK, json={"url": "https://x.example", "events": ["*"]})
    assert response.status_code == 403
    assert response.json()["code"] == "PUBLIC_KEY_NOT_ALLOWED"
