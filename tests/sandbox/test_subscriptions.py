"""Subscription lifecycle: trial, cancel now or at period end, pause/resume, invalid transitions, webhooks."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from clock_helpers import FakeClock, utc
from sandbox_helpers import PK, new_customer

from drip_mcp.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock(sandbox: Sandbox) -> FakeClock:
    fake = FakeClock(utc(2026, 1, 31, 12, 0))
    sandbox.store.clock = fake
    return fake


@pytest.fixture
async def hook(client: httpx2.AsyncClient) -> str:
    created = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    assert created.status_code == 201, created.text
    hook_id: str = created.json()["id"]
    return hook_id


def _events(sandbox: Sandbox) -> list[tuple[str, dict[str, Any]]]:
    return [
        (row["event_type"], json.loads(row["payload"])["data"])
        for row in sandbox.store.list_deliveries()
        if row["event_type"].startswith("subscription.")
    ]


async def _create(client: httpx2.AsyncClient, customer: str, **extra: Any) -> dict[str, Any]:
    body = {"customerId": customer, "name": "Pro", "interval": "MONTHLY", "priceUsdc": 29.5, **extra}
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_is_active_for_one_interval(client: httpx2.AsyncClient, clock: FakeClock, hook: str) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer, metadata={"tier": 2}, includedUsage=1000, overageUnitType="api_calls")
    assert sub["status"] == "ACTIVE"
    assert sub["priceUsdc"] == "29.500000"
    assert sub["currentPeriodStart"] == "2026-01-31T12:00:00.000Z"
    assert sub["currentPeriodEnd"] == "2026-02-28T12:00:00.000Z"  # clamped to February
    assert sub["trialStart"] is None
    assert sub["cancelAtPeriodEnd"] is False
    assert (sub["includedUsage"], sub["overageUnitType"], sub["metadata"]) == (1000, "api_calls", {"tier": 2})


async def test_trial_ends_into_a_paid_period(
    client: httpx2.AsyncClient, sandbox: Sandbox, clock: FakeClock, hook: str
) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer, trialDays=14, interval="WEEKLY")
    assert sub["status"] == "TRIALING"
    assert (sub["trialStart"], sub["trialEnd"]) == ("2026-01-31T12:00:00.000Z", "2026-02-14T12:00:00.000Z")
    clock.advance(days=15)
    now = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
    assert now["status"] == "ACTIVE"
    assert (now["currentPeriodStart"], now["currentPeriodEnd"]) == (
        "2026-02-14T12:00:00.000Z",
        "2026-02-21T12:00:00.000Z",
    )
    assert [name for name, _ in _events(sandbox)] == ["subscription.created", "subscription.trial_ended"]


async def test_cancel_at_period_end_then_cancelled(
    client: httpx2.AsyncClient, sandbox: Sandbox, clock: FakeClock, hook: str
) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer)
    pending = (await client.post(f"/v1/subscriptions/{sub['id']}/cancel", json={})).json()
    assert pending["status"] == "ACTIVE"
    assert pending["cancelAtPeriodEnd"] is True
    assert pending["cancelledAt"] is None
    assert "subscription.cancelled" not in [name for name, _ in _events(sandbox)]
    clock.advance(days=29)
    ended = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
    assert ended["status"] == "CANCELLED"
    assert ended["cancelledAt"] == "2026-02-28T12:00:00.000Z"
    assert _events(sandbox)[-1][0] == "subscription.cancelled"


async def test_cancel_immediately_and_invalid_transitions(
    client: httpx2.AsyncClient, sandbox: Sandbox, clock: FakeClock, hook: str
) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer)
    resumed = await client.post(f"/v1/subscriptions/{sub['id']}/resume")
    assert resumed.status_code == 409
    assert resumed.json()["code"] == "INVALID_SUBSCRIPTION_TRANSITION"
    assert resumed.json()["status"] == "ACTIVE"
    cancelled = (await client.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"immediate": True})).json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancelledAt"] == "2026-01-31T12:00:00.000Z"
    assert _events(sandbox)[-1] == ("subscription.cancelled", _events(sandbox)[-1][1])
    assert _events(sandbox)[-1][1]["status"] == "CANCELLED"
    for action, body in (("cancel", {"immediate": True}), ("pause", {}), ("resume", {})):
        refused = await client.post(f"/v1/subscriptions/{sub['id']}/{action}", json=body)
        assert refused.status_code == 409, action
        assert refused.json()["code"] == "INVALID_SUBSCRIPTION_TRANSITION", action
    patched = await client.patch(f"/v1/subscriptions/{sub['id']}", json={"name": "x"})
    assert patched.status_code == 409


async def test_pause_with_resume_date_resumes_by_itself(
    client: httpx2.AsyncClient, sandbox: Sandbox, clock: FakeClock, hook: str
) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer)
    paused = await client.post(f"/v1/subscriptions/{sub['id']}/pause", json={"resumeDate": "2026-02-10T00:00:00Z"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "PAUSED"
    assert paused.json()["resumesAt"] == "2026-02-10T00:00:00.000Z"
    assert paused.json()["pausedAt"] == "2026-01-31T12:00:00.000Z"
    assert (await client.post(f"/v1/subscriptions/{sub['id']}/pause", json={})).status_code == 409
    clock.advance(days=11)
    listed = (await client.get("/v1/subscriptions", params={"customerId": customer, "status": "ACTIVE"})).json()
    assert listed["count"] == 1
    assert listed["data"][0]["currentPeriodStart"] == "2026-02-10T00:00:00.000Z"
    assert [name for name, _ in _events(sandbox)] == [
        "subscription.created",
        "subscription.paused",
        "subscription.resumed",
    ]


async def test_pause_then_resume_starts_a_new_period(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer, interval="DAILY")
    past = await client.post(f"/v1/subscriptions/{sub['id']}/pause", json={"resumeDate": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422
    assert (await client.post(f"/v1/subscriptions/{sub['id']}/pause", json={})).json()["resumesAt"] is None
    clock.advance(days=3)
    assert (await client.get(f"/v1/subscriptions/{sub['id']}")).json()["status"] == "PAUSED"
    resumed = (await client.post(f"/v1/subscriptions/{sub['id']}/resume")).json()
    assert resumed["status"] == "ACTIVE"
    assert resumed["pausedAt"] is None
    assert (resumed["currentPeriodStart"], resumed["currentPeriodEnd"]) == (
        "2026-02-03T12:00:00.000Z",
        "2026-02-04T12:00:00.000Z",
    )


async def test_periods_renew_and_list_filters(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    other = await new_customer(client, "user-2")
    sub = await _create(client, customer, interval="DAILY")
    await _create(client, other)
    clock.advance(days=2, hours=1)
    renewed = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
    assert renewed["currentPeriodStart"] == "2026-02-02T12:00:00.000Z"
    everyone = (await client.get("/v1/subscriptions")).json()
    assert everyone["count"] == 2
    assert everyone["data"][0]["customerId"] == other
    assert (await client.get("/v1/subscriptions", params={"limit": 1})).json()["count"] == 1
    assert (await client.get("/v1/subscriptions", params={"status": "PAUSED"})).json()["count"] == 0


async def test_update_and_validation(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    sub = await _create(client, customer)
    patched = await client.patch(
        f"/v1/subscriptions/{sub['id']}", json={"priceUsdc": 10, "description": None, "includedUsage": 5}
    )
    assert patched.json()["priceUsdc"] == "10.000000"
    assert patched.json()["includedUsage"] == 5
    bad = await client.post(
        "/v1/subscriptions", json={"customerId": customer, "name": "x", "interval": "HOURLY", "trialDays": 400}
    )
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {"interval", "trialDays", "priceUsdc"}
    missing = await client.post(
        "/v1/subscriptions", json={"customerId": "cnope", "name": "x", "interval": "DAILY", "priceUsdc": 1}
    )
    assert missing.status_code == 404
    assert (await client.get("/v1/subscriptions", headers=PK)).status_code == 200  # public keys may list them
