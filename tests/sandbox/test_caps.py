"""Spending caps: set/list/remove, and enforcement on /usage and /usage/async with an injected clock."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import anyio
import httpx2
import pytest
from drip import verify_webhook_signature
from sandbox_helpers import SK, new_customer, usage

from drip_mcp.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.anyio

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc).timestamp()
DAY = 86_400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _cap(client: httpx2.AsyncClient, customer_id: str, cap_type: str, limit: object, **extra: object) -> dict:
    response = await client.put(
        f"/v1/customers/{customer_id}/spending-cap", json={"capType": cap_type, "limitValue": limit, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_daily_cap_refuses_exactly_the_charge_that_would_cross_it(
    sandbox: Sandbox, client: httpx2.AsyncClient
) -> None:
    sandbox.store.clock = Clock(NOON)
    customer_id = await new_customer(client)
    cap = await _cap(client, customer_id, "DAILY_CHARGE_LIMIT", 0.01)  # 10 api_calls at 0.001
    assert cap["limitValue"] == "0.010000"
    assert cap["currentUsage"] == "0.000000"
    assert (await client.post("/v1/usage", json=usage(customer_id, "a", quantity=6))).status_code == 201
    refused = await client.post("/v1/usage", json=usage(customer_id, "b", quantity=5))
    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "SPENDING_CAP_EXCEEDED"
    assert body["capId"] == cap["id"]
    assert body["limitValue"] == "0.010000"
    assert body["currentUsage"] == "0.006000"
    assert body["attemptedAmountUsdc"] == "0.005000"
    landed = await client.post("/v1/usage", json=usage(customer_id, "c", quantity=4))  # exactly on the cap
    assert landed.status_code == 201, landed.text
    assert (await client.post("/v1/usage", json=usage(customer_id, "d", quantity=1))).status_code == 403
    [listed] = (await client.get(f"/v1/customers/{customer_id}/spending-caps")).json()["caps"]
    assert listed["currentUsage"] == "0.010000"
    assert listed["lastAlertLevel"] == "100"
    assert sandbox.store.balance(customer_id) == Decimal("99.99")
    assert sandbox.store.count_charges(customer_id) == 2


async def test_daily_cap_resets_when_the_day_changes(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    clock = Clock(NOON)
    sandbox.store.clock = clock
    customer_id = await new_customer(client)
    await _cap(client, customer_id, "DAILY_CHARGE_LIMIT", 0.005)
    assert (await client.post("/v1/usage", json=usage(customer_id, "a", quantity=5))).status_code == 201
    assert (await client.post("/v1/usage", json=usage(customer_id, "b", quantity=1))).status_code == 403
    clock.now += DAY
    [cap] = (await client.get(f"/v1/customers/{customer_id}/spending-caps")).json()["caps"]
    assert cap["currentUsage"] == "0.000000"
    assert cap["periodStart"] == "2026-03-11T00:00:00.000Z"
    assert (await client.post("/v1/usage", json=usage(customer_id, "b", quantity=5))).status_code == 201
    assert (await client.post("/v1/usage", json=usage(customer_id, "c", quantity=1))).status_code == 403


async def test_monthly_cap_spans_days_but_resets_with_the_month(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    clock = Clock(NOON)
    sandbox.store.clock = clock
    customer_id = await new_customer(client)
    await _cap(client, customer_id, "MONTHLY_CHARGE_LIMIT", "0.003")
    assert (await client.post("/v1/usage", json=usage(customer_id, "a", quantity=2))).status_code == 201
    clock.now += 5 * DAY
    assert (await client.post("/v1/usage", json=usage(customer_id, "b", quantity=2))).status_code == 403
    clock.now = datetime(2026, 4, 1, 0, 0, 1, tzinfo=timezone.utc).timestamp()
    assert (await client.post("/v1/usage", json=usage(customer_id, "b", quantity=3))).status_code == 201


async def test_single_charge_limit_and_autoblock_off(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    await _cap(client, customer_id, "SINGLE_CHARGE_LIMIT", 0.002)
    assert (await client.post("/v1/usage", json=usage(customer_id, "a", quantity=2))).status_code == 201
    assert (await client.post("/v1/usage", json=usage(customer_id, "b", quantity=2))).status_code == 201
    assert (await client.post("/v1/usage", json=usage(customer_id, "c", quantity=3))).json()["code"] == (
        "SPENDING_CAP_EXCEEDED"
    )
    daily = await _cap(client, customer_id, "DAILY_CHARGE_LIMIT", 0.001, autoBlock=False)
    assert (await client.post("/v1/usage", json=usage(customer_id, "d", quantity=2))).status_code == 201
    caps = {c["capType"]: c for c in (await client.get(f"/v1/customers/{customer_id}/spending-caps")).json()["caps"]}
    assert caps["DAILY_CHARGE_LIMIT"]["id"] == daily["id"]
    assert caps["DAILY_CHARGE_LIMIT"]["currentUsage"] == "0.002000"  # counted from when it was set
    removed = await client.delete(f"/v1/customers/{customer_id}/spending-caps/{caps['SINGLE_CHARGE_LIMIT']['id']}")
    assert removed.json() == {"success": True}
    assert (await client.post("/v1/usage", json=usage(customer_id, "c", quantity=3))).status_code == 201
    again = await client.delete(f"/v1/customers/{customer_id}/spending-caps/{caps['SINGLE_CHARGE_LIMIT']['id']}")
    assert again.status_code == 404


async def test_async_charge_is_refused_by_a_cap_at_acceptance(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    await _cap(client, customer_id, "DAILY_CHARGE_LIMIT", 0.002)
    assert (await client.post("/v1/usage/async", json=usage(customer_id, "a", quantity=2))).status_code == 202
    refused = await client.post("/v1/usage/async", json=usage(customer_id, "b", quantity=1))
    assert refused.status_code == 403
    assert refused.json()["code"] == "SPENDING_CAP_EXCEEDED"


async def test_cap_validation_and_unknown_customer(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    bad = await client.put(f"/v1/customers/{customer_id}/spending-cap", json={"capType": "WEEKLY", "limitValue": -1})
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {"capType", "limitValue"}
    missing = await client.put(
        "/v1/customers/nope/spending-cap", json={"capType": "DAILY_CHARGE_LIMIT", "limitValue": 1}
    )
    assert missing.status_code == 404


async def test_spending_alerts_fire_once_per_level_per_period() -> None:
    received: list[dict[str, object]] = []
    secret = ""
    done = anyio.Event()

    def handle(request: httpx2.Request) -> httpx2.Response:
        assert verify_webhook_signature(request.content.decode(), request.headers["X-Drip-Signature"], secret)
        received.append(json.loads(request.content))
        if any(e["type"] == "customer.spending.blocked" for e in received):
            done.set()
        return httpx2.Response(200)

    hosts = ("hooks.example",)  # a made-up host: deliveries are mocked
    sandbox = Sandbox(SandboxConfig(webhook_allowed_hosts=hosts), delivery_transport=httpx2.MockTransport(handle))
    sandbox.store.clock = Clock(NOON)
    async with (
        sandbox,
        httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as client,
    ):
        events = ["customer.spending.warning", "customer.spending.blocked", "customer.usage_cap.reached"]
        hook = (await client.post("/v1/webhooks", json={"url": "https://hooks.example/x", "events": events})).json()
        secret = hook["secret"]
        customer_id = await new_customer(client)
        await _cap(client, customer_id, "DAILY_CHARGE_LIMIT", 0.1)  # 100 api_calls
        for key, quantity in (("a", 50), ("b", 10), ("c", 25), ("d", 15), ("e", 1)):
            await client.post("/v1/usage", json=usage(customer_id, key, quantity=quantity))
        with anyio.fail_after(5):
            await done.wait()
    summary = [(e["type"], e["data"].get("threshold")) for e in received]  # type: ignore[attr-defined]
    assert sorted(summary, key=str) == [
        ("customer.spending.blocked", None),
        ("customer.spending.warning", 50),
        ("customer.spending.warning", 80),
        ("customer.spending.warning", 95),
        ("customer.usage_cap.reached", None),
    ]
