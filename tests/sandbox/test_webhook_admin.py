"""Webhook PATCH and filters, deliveries list/get/retry, /webhooks/events, loopback-only webhook URLs."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from sandbox_helpers import SK, new_customer, usage

from drip_mcp.cli import add_webhook_host_arguments, webhook_hosts_from_args
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LOCAL = "http://127.0.0.1:9/hook"


class FlakyReceiver:
    """Answers 500 until `healthy`, then 200; counts what it got."""

    def __init__(self) -> None:
        self.healthy = False
        self.received: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.received.append(json.loads(request.content))
        return httpx2.Response(200 if self.healthy else 500)


async def _hook(client: httpx2.AsyncClient, url: str = LOCAL, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ["*"], **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def receiver() -> FlakyReceiver:
    return FlakyReceiver()


@pytest.fixture
def sandbox(receiver: FlakyReceiver) -> Sandbox:
    return Sandbox(
        SandboxConfig(starting_balance_usdc=Decimal(100)), delivery_transport=httpx2.MockTransport(receiver.handle)
    )


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as http:
        yield http


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/drip", "https://10.0.0.1/h", "https://localhost.evil.com/h"]
)
async def test_non_loopback_webhook_url_is_refused_by_default(client: httpx2.AsyncClient, url: str) -> None:
    response = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 422
    assert response.json()["code"] == "WEBHOOK_URL_NOT_ALLOWED"
    assert response.json()["details"][0]["path"] == "url"
    hook = await _hook(client)
    patched = await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": url})
    assert patched.json()["code"] == "WEBHOOK_URL_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("allowed", "url", "status"),
    [
        (("hooks.example.com",), "https://hooks.example.com/drip", 201),
        (("hooks.example.com",), "https://other.example.com/drip", 422),
        (("*.example.com",), "https://a.b.example.com/drip", 201),
        (("*",), "https://anything.test/drip", 201),
        (("*",), "http://anything.test/drip", 422),  # still https only off loopback
    ],
)
async def test_allowed_hosts_option(allowed: tuple[str, ...], url: str, status: int) -> None:
    sandbox = Sandbox(SandboxConfig(webhook_allowed_hosts=allowed))
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://s.test", headers=SK) as client:
        response = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == status, response.text


def test_serve_flags_and_environment_give_the_allowed_hosts() -> None:
    parser = argparse.ArgumentParser()
    add_webhook_host_arguments(parser)
    assert webhook_hosts_from_args(parser.parse_args([])) == ()
    two = parser.parse_args(["--allow-webhook-host", "a.test", "--allow-webhook-host", "*.b.test"])
    assert webhook_hosts_from_args(two) == ("a.test", "*.b.test")
    assert webhook_hosts_from_args(parser.parse_args(["--allow-any-webhook-host"])) == ("*",)
    env = {"DRIP_SANDBOX_WEBHOOK_HOSTS": " a.test, *.b.test ,"}
    assert Settings.load(env, api_key="", require_key=False).sandbox_webhook_hosts == ("a.test", "*.b.test")
    assert Settings.load({}, api_key="", require_key=False).sandbox_webhook_hosts == ()


async def test_patch_webhook_fields_and_filters(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    hook = await _hook(client, description="first")
    assert hook["filters"] is None
    filters = {"usageTypes": ["tokens"], "customerIds": ["c1"]}
    patched = await client.patch(
        f"/v1/webhooks/{hook['id']}",
        json={"url": "http://localhost:8/x", "events": ["usage.recorded"], "description": "second", "filters": filters},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["url"], body["events"], body["description"], body["filters"]) == (
        "http://localhost:8/x",
        ["usage.recorded"],
        "second",
        filters,
    )
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()["filters"] == filters
    cleared = (await client.patch(f"/v1/webhooks/{hook['id']}", json={"filters": None, "isActive": False})).json()
    assert cleared["filters"] is None
    assert cleared["isActive"] is False
    bad = await client.patch(f"/v1/webhooks/{hook['id']}", json={"filters": {"severities": ["huge"], "x": [1]}})
    assert bad.status_code == 422
    assert (await client.patch("/v1/webhooks/cnope", json={"description": "x"})).status_code == 404


async def test_filters_decide_which_events_are_enqueued(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer = await new_customer(client)
    other = await new_customer(client, "user-2")
    hook = await _hook(client, filters={"usageTypes": ["tokens"], "customerIds": [customer]})
    await client.post("/v1/usage/internal", json=usage(customer, "k1", "tokens"))
    await client.post("/v1/usage/internal", json=usage(customer, "k2", "api_calls"))
    await client.post("/v1/usage/internal", json=usage(other, "k3", "tokens"))
    deliveries = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    assert deliveries["count"] == 1
    [only] = sandbox.store.list_deliveries(hook["id"])
    assert json.loads(only["payload"])["data"]["usageType"] == "tokens"


async def test_webhook_events_route_is_reachable(client: httpx2.AsyncClient) -> None:
    response = await client.get("/v1/webhooks/events")
    assert response.status_code == 200
    body = response.json()
    assert {"charge.succeeded", "subscription.created", "customer.entitlement.assigned"} <= set(body["events"])
    assert set(body["description"]) == set(body["events"])


async def test_deliveries_list_get_and_retry(
    client: httpx2.AsyncClient, sandbox: Sandbox, receiver: FlakyReceiver
) -> None:
    hook = await _hook(client)
    failed = (await client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    assert failed["status"] == "FAILED"
    await new_customer(client)  # a customer.created delivery, left PENDING (no worker runs)

    listed = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    assert listed["count"] == 2
    assert [d["eventType"] for d in listed["data"]] == ["customer.created", "webhook.test"]  # newest first
    assert (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 1})).json()["count"] == 1
    pending_id = listed["data"][0]["id"]
    detail = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries/{failed['deliveryId']}")).json()
    assert (detail["status"], detail["attempts"], detail["responseCode"]) == ("FAILED", 1, 500)
    assert detail["payload"]["type"] == "webhook.test"

    receiver.healthy = True
    retried = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed['deliveryId']}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"], retried.json()["responseCode"]) == (
        "DELIVERED",
        2,
        200,
    )
    assert len(receiver.received) == 2
    busy = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{pending_id}/retry")
    assert busy.status_code == 409
    assert busy.json()["code"] == "DELIVERY_IN_PROGRESS"
    other = await _hook(client)
    foreign = await client.get(f"/v1/webhooks/{other['id']}/deliveries/{failed['deliveryId']}")
    assert foreign.status_code == 404
