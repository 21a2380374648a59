"""Entitlement plans, rules, assignment and checks that consume per-period allowances."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from clock_helpers import FakeClock, utc
from sandbox_helpers import PK, new_customer

from drip_mcp.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock(sandbox: Sandbox) -> FakeClock:
    fake = FakeClock(utc(2026, 3, 31, 23, 0))
    sandbox.store.clock = fake
    return fake


async def _plan_with_rule(client: httpx2.AsyncClient, slug: str = "pro", **rule: Any) -> tuple[str, str]:
    plan = await client.post("/v1/entitlement-plans", json={"name": slug.title(), "slug": slug})
    assert plan.status_code == 201, plan.text
    body = {"featureKey": "search", "limitType": "COUNT", "period": "DAILY", "limitValue": 3, **rule}
    created = await client.post(f"/v1/entitlement-plans/{plan.json()['id']}/rules", json=body)
    assert created.status_code == 201, created.text
    return plan.json()["id"], created.json()["id"]


async def _check(client: httpx2.AsyncClient, customer_id: str, quantity: Any = 1, feature: str = "search") -> Any:
    response = await client.post(
        "/v1/entitlements/check", json={"customerId": customer_id, "featureKey": feature, "quantity": quantity}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_count_limit_runs_out_and_resets_next_day(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    plan_id, _ = await _plan_with_rule(client)
    assigned = await client.put(f"/v1/customers/{customer}/entitlement", json={"planId": plan_id})
    assert assigned.status_code == 200, assigned.text

    results = [await _check(client, customer) for _ in range(4)]
    assert [r["allowed"] for r in results] == [True, True, True, False]
    assert [r["remaining"] for r in results] == [2, 1, 0, 0]
    assert results[0]["limit"] == 3
    assert results[0]["period"] == "DAILY"
    assert not results[0]["unlimited"]
    assert results[0]["periodResetsAt"] == "2026-04-01T00:00:00.000Z"
    assert "reason" not in results[0]
    assert "exceeded" in results[3]["reason"]

    clock.advance(hours=1)  # 2026-04-01T00:00Z: a new day
    fresh = await _check(client, customer, quantity=2)
    assert fresh["allowed"]
    assert fresh["remaining"] == 1
    assert fresh["periodResetsAt"] == "2026-04-02T00:00:00.000Z"
    denied = await _check(client, customer, quantity=2)  # more than what remains: denied whole, nothing consumed
    assert not denied["allowed"]
    assert denied["remaining"] == 1


async def test_amount_limit_is_usdc_per_month(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    plan_id, _ = await _plan_with_rule(client, featureKey="spend", limitType="AMOUNT", period="MONTHLY", limitValue=1.5)
    await client.put(f"/v1/customers/{customer}/entitlement", json={"planId": plan_id})

    first = await _check(client, customer, quantity=0.75, feature="spend")
    second = await _check(client, customer, quantity=0.75, feature="spend")
    third = await _check(client, customer, quantity=0.000001, feature="spend")
    assert (first["remaining"], second["remaining"]) == (0.75, 0)
    assert first["limit"] == 1.5
    assert first["period"] == "MONTHLY"
    assert not third["allowed"]
    assert first["periodResetsAt"] == "2026-04-01T00:00:00.000Z"

    clock.advance(hours=2)  # into April
    assert (await _check(client, customer, quantity=1.5, feature="spend"))["allowed"]
    usage = (await client.get(f"/v1/customers/{customer}/entitlement/usage")).json()
    assert usage["usage"]["spend"]["used"] == 1.5
    assert usage["usage"]["spend"]["periodStart"] == "2026-04-01T00:00:00.000Z"


async def test_unlimited_rule_and_override_report_minus_one(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    other = await new_customer(client, "user-2")
    plan_id, _ = await _plan_with_rule(client, unlimited=True)
    await client.put(f"/v1/customers/{customer}/entitlement", json={"planId": plan_id})
    result = await _check(client, customer, quantity=10_000)
    assert result["allowed"]
    assert result["unlimited"]
    assert (result["remaining"], result["limit"]) == (-1, -1)

    limited_plan, _ = await _plan_with_rule(client, slug="basic")
    override = {"search": {"unlimited": True}}
    assigned = await client.put(
        f"/v1/customers/{other}/entitlement", json={"planId": limited_plan, "overrides": override}
    )
    assert assigned.json()["overrides"] == override
    assert (await _check(client, other, quantity=50))["limit"] == -1


async def test_override_limit_value_and_feature_outside_plan(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    plan_id, _ = await _plan_with_rule(client)
    await client.put(f"/v1/customers/{customer}/entitlement", json={"planId": plan_id, "overrides": {"search": 1}})
    assert (await _check(client, customer))["allowed"]
    assert not (await _check(client, customer))["allowed"]
    other = await _check(client, customer, feature="export")
    assert not other["allowed"]
    assert "not included" in other["reason"]


async def test_customer_without_plan_is_not_gated_and_unknown_customer_is_404(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    result = await _check(client, customer, quantity=999)
    assert result["allowed"]
    assert result["unlimited"]
    assert result["remaining"] == -1
    missing = await client.post("/v1/entitlements/check", json={"customerId": "cnope", "featureKey": "search"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"
    assert (await client.get(f"/v1/customers/{customer}/entitlement")).status_code == 404


async def test_default_plan_applies_until_assignment(client: httpx2.AsyncClient, clock: FakeClock) -> None:
    customer = await new_customer(client)
    default = await client.post("/v1/entitlement-plans", json={"name": "Free", "slug": "free", "isDefault": True})
    await client.post(
        f"/v1/entitlement-plans/{default.json()['id']}/rules",
        json={"featureKey": "search", "limitType": "COUNT", "period": "MONTHLY", "limitValue": 1},
    )
    assert (await _check(client, customer))["allowed"]
    assert not (await _check(client, customer))["allowed"]
    entitlement = (await client.get(f"/v1/customers/{customer}/entitlement")).json()
    assert entitlement["planSlug"] == "free"
    assert entitlement["usage"]["search"] | {"periodStart": None} == {
        "used": 1,
        "limit": 1,
        "remaining": 0,
        "unlimited": False,
        "limitType": "COUNT",
        "period": "MONTHLY",
        "periodStart": None,
        "periodResetsAt": "2026-04-01T00:00:00.000Z",
    }


async def test_plan_and_rule_crud(client: httpx2.AsyncClient) -> None:
    plan_id, rule_id = await _plan_with_rule(client)
    listed = (await client.get("/v1/entitlement-plans")).json()
    assert [p["id"] for p in listed["plans"]] == [plan_id]
    patched = await client.patch(f"/v1/entitlement-plans/{plan_id}", json={"name": "Pro+", "description": "more"})
    assert patched.json()["name"] == "Pro+"
    assert patched.json()["description"] == "more"
    rule = await client.patch(f"/v1/entitlement-rules/{rule_id}", json={"limitValue": 10, "period": "MONTHLY"})
    assert rule.json()["limitValue"] == 10
    assert rule.json()["period"] == "MONTHLY"
    rules = (await client.get(f"/v1/entitlement-plans/{plan_id}/rules")).json()["rules"]
    assert [r["limitValue"] for r in rules] == [10]
    dup = await client.post(
        f"/v1/entitlement-plans/{plan_id}/rules",
        json={"featureKey": "search", "limitType": "COUNT", "period": "DAILY", "limitValue": 1},
    )
    assert dup.status_code == 409
    assert dup.json()["code"] == "DUPLICATE_ENTITLEMENT_RULE"
    again = await client.post("/v1/entitlement-plans", json={"name": "x", "slug": "pro"})
    assert again.status_code == 409
    assert again.json()["code"] == "DUPLICATE_ENTITLEMENT_PLAN"
    bad = await client.post(f"/v1/entitlement-plans/{plan_id}/rules", json={"featureKey": "a", "limitType": "SIZE"})
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {
        "limitType",
        "period",
        "limitValue",
    }
    assert (await client.delete(f"/v1/entitlement-rules/{rule_id}")).status_code == 204
    assert (await client.delete(f"/v1/entitlement-rules/{rule_id}")).status_code == 404
    assert (await client.delete(f"/v1/entitlement-plans/{plan_id}")).status_code == 204
    assert (await client.get(f"/v1/entitlement-plans/{plan_id}")).json()["isActive"] is False


async def test_plan_routes_are_secret_only_but_check_accepts_public_keys(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    assert (await client.get("/v1/entitlement-plans", headers=PK)).status_code == 403
    put = await client.put(f"/v1/customers/{customer}/entitlement", headers=PK, json={"planId": "x"})
    assert put.json()["code"] == "PUBLIC_KEY_NOT_ALLOWED"
    check = await client.post("/v1/entitlements/check", headers=PK, json={"customerId": customer, "featureKey": "a"})
    assert check.status_code == 200
