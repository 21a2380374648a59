from __future__ import annotations

from decimal import Decimal

import anyio
import httpx2
import pytest
from sandbox_helpers import PK, new_customer, usage

from drip_mcp.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.anyio


async def test_health_needs_no_key(sandbox: Sandbox) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test") as http:
        response = await http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert isinstance(response.json()["timestamp"], int)


@pytest.mark.parametrize(
    ("authorization", "message_part"),
    [
        (None, "Missing API key"),
        ("Bearer", "Missing API key"),
        ("Basic sk_test_sandboxsecret", "Missing API key"),
        ("Bearer sk_test_short", "Invalid API key"),
        ("Bearer xx_test_sandboxsecret", "Invalid API key"),
        ("Bearer sk_live_sandboxsecret", "test keys only"),
        ("Bearer pk_live_sandboxsecret", "test keys only"),
    ],
)
async def test_missing_malformed_and_live_keys_get_401(
    sandbox: Sandbox, authorization: str | None, message_part: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test") as http:
        response = await http.get("/v1/customers", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert message_part in response.json()["error"]


async def test_public_key_may_track_usage_but_not_create_pricing_plans(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    tracked = await client.post("/v1/usage/internal", json=usage(customer_id, "k1"), headers=PK)
    assert tracked.status_code == 201
    plan = {"name": "Images", "unitType": "images", "unitPriceUsd": 0.5}
    refused = await client.post("/v1/pricing-plans", json=plan, headers=PK)
    assert refused.status_code == 403
    assert refused.json()["code"] == "PUBLIC_KEY_NOT_ALLOWED"
    assert "sk_" in refused.json()["error"]


async def test_customer_create_get_list_and_balance(client: httpx2.AsyncClient) -> None:
    created = await client.post("/v1/customers", json={"externalCustomerId": "acme", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    customer = created.json()
    assert customer["externalCustomerId"] == "acme"
    assert customer["metadata"] == {"plan": "pro"}
    assert customer["status"] == "ACTIVE"
    fetched = await client.get(f"/v1/customers/{customer['id']}")
    assert fetched.json()["id"] == customer["id"]
    await new_customer(client, "second")
    listed = (await client.get("/v1/customers", params={"limit": 1})).json()
    assert listed["count"] == 1
    assert listed["data"][0]["externalCustomerId"] == "second"
    offset = (await client.get("/v1/customers", params={"limit": 1, "offset": 1})).json()
    assert offset["data"][0]["id"] == customer["id"]
    balance = (await client.get(f"/v1/customers/{customer['id']}/balance")).json()
    assert balance["balanceUsdc"] == "100.000000"
    assert balance["availableUsdc"] == "100.000000"
    assert balance["onchainAddress"].startswith("0x")
    assert len(balance["onchainAddress"]) == 42


async def test_duplicate_customer_is_409_with_existing_id(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client, "dup")
    response = await client.post("/v1/customers", json={"externalCustomerId": "dup"})
    assert response.status_code == 409
    assert response.json()["code"] == "DUPLICATE_CUSTOMER"
    assert response.json()["existingCustomerId"] == customer_id


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "externalCustomerId"),
        ({"externalCustomerId": "x" * 256}, "externalCustomerId"),
        ({"onchainAddress": "0x123"}, "onchainAddress"),
        ({"externalCustomerId": "ok", "isInternal": "yes"}, "isInternal"),
    ],
)
async def test_invalid_customer_is_422_with_details(
    client: httpx2.AsyncClient, body: dict[str, object], path: str
) -> None:
    response = await client.post("/v1/customers", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert path in [detail["path"] for detail in response.json()["details"]]


async def test_invalid_json_is_400(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/customers", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_unknown_customer_and_route_are_404(client: httpx2.AsyncClient) -> None:
    for path in ("/v1/customers/nope", "/v1/customers/nope/balance", "/v1/charges/nope", "/v1/nothing"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NOT_FOUND"


async def test_charge_draws_balance_down_and_is_listed(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer_id = await new_customer(client)
    response = await client.post("/v1/usage", json=usage(customer_id, "charge-1", quantity=250))
    assert response.status_code == 201
    result = response.json()
    assert result["isDuplicate"] is False
    assert result["charge"]["amountUsdc"] == "0.250000"
    assert result["charge"]["amountToken"] == "250000"
    assert result["charge"]["status"] == "CONFIRMED"
    assert sandbox.store.balance(customer_id) == Decimal("99.75")
    charge = (await client.get(f"/v1/charges/{result['charge']['id']}")).json()
    assert charge["usageId"] == result["usageEventId"]
    assert charge["customer"]["id"] == customer_id
    assert charge["usageEvent"] == {
        "id": result["usageEventId"],
        "type": "api_calls",
        "quantity": "250",
        "metadata": None,
        "createdAt": charge["usageEvent"]["createdAt"],
    }
    listed = (await client.get("/v1/charges", params={"customerId": customer_id, "status": "CONFIRMED"})).json()
    assert [c["id"] for c in listed["data"]] == [result["charge"]["id"]]
    assert (await client.get("/v1/charges", params={"status": "FAILED"})).json()["count"] == 0
    usage_list = (await client.get("/v1/usage", params={"customerId": customer_id})).json()
    assert usage_list["data"][0]["charge"]["id"] == result["charge"]["id"]


async def test_replayed_charge_returns_original_charge_and_charges_once(
    client: httpx2.AsyncClient, sandbox: Sandbox
) -> None:
    customer_id = await new_customer(client)
    first = (await client.post("/v1/usage", json=usage(customer_id, "same", quantity=1000))).json()
    replay = await client.post("/v1/usage", json=usage(customer_id, "same", quantity=1000))
    assert replay.status_code == 201
    assert replay.json()["isDuplicate"] is True
    assert replay.json()["usageEventId"] == first["usageEventId"]
    assert replay.json()["charge"]["id"] == first["charge"]["id"]
    assert sandbox.store.count_usage_events(customer_id) == 1
    assert sandbox.store.count_charges(customer_id) == 1
    assert sandbox.store.balance(customer_id) == Decimal("99")


async def test_replayed_track_usage_returns_original_event_once(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer_id = await new_customer(client)
    first = (await client.post("/v1/usage/internal", json=usage(customer_id, "t1", quantity=2.5))).json()
    assert first["quantity"] == 2.5
    assert first["isInternal"] is True
    replay = (await client.post("/v1/usage/internal", json=usage(customer_id, "t1", quantity=2.5))).json()
    assert replay["isDuplicate"] is True
    assert replay["usageEventId"] == first["usageEventId"]
    assert sandbox.store.usage_idempotency_keys() == ["t1"]
    assert sandbox.store.balance(customer_id) == Decimal("100")


async def test_batch_usage_is_accepted_202_and_drops_duplicates(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer_id = await new_customer(client)
    first = await client.post("/v1/usage/internal/batch", json=usage(customer_id, "b1"))
    second = await client.post("/v1/usage/internal/batch", json=usage(customer_id, "b1"))
    assert first.status_code == second.status_code == 202
    assert first.json()["idempotencyKey"] == "b1"
    assert first.json()["pendingEvents"] == 0
    assert second.json()["isDuplicate"] is True
    assert sandbox.store.count_usage_events(customer_id) == 1


async def test_unknown_external_customer_is_created_on_usage(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    body = {"externalCustomerId": "fresh", "usageType": "tokens", "quantity": 10, "idempotencyKey": "e1"}
    response = await client.post("/v1/usage/internal", json=body)
    assert response.status_code == 201
    customer_id = response.json()["customerId"]
    assert (await client.get(f"/v1/customers/{customer_id}")).json()["externalCustomerId"] == "fresh"
    again = {**body, "idempotencyKey": "e2"}
    assert (await client.post("/v1/usage/internal", json=again)).json()["customerId"] == customer_id


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"idempotencyKey": None}, "idempotencyKey"),
        ({"idempotencyKey": "k" * 129}, "idempotencyKey"),
        ({"customerId": None}, "customerId"),
        ({"units": "u" * 51}, "units"),
        ({"description": "d" * 501}, "description"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/usage", "/v1/usage/internal", "/v1/usage/internal/batch"])
async def test_invalid_usage_is_422_and_records_nothing(
    client: httpx2.AsyncClient, sandbox: Sandbox, route: str, override: dict[str, object], path: str
) -> None:
    customer_id = await new_customer(client)
    body = {key: value for key, value in {**usage(customer_id, "k"), **override}.items() if value is not None}
    response = await client.post(route, json=body)
    assert response.status_code == 422
    assert path in [detail["path"] for detail in response.json()["details"]]
    assert sandbox.store.count_usage_events() == 0


async def test_non_finite_quantity_is_rejected(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    raw = f'{{"customerId":"{customer_id}","usageType":"api_calls","quantity":NaN,"idempotencyKey":"n"}}'
    response = await client.post("/v1/usage", content=raw.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    infinite = usage(customer_id, "i", quantity="Infinity")
    response = await client.post("/v1/usage", json=infinite)
    assert response.status_code == 422


async def test_charge_without_pricing_plan_is_404_and_records_nothing(
    client: httpx2.AsyncClient, sandbox: Sandbox
) -> None:
    customer_id = await new_customer(client)
    response = await client.post("/v1/usage", json=usage(customer_id, "k", meter="unpriced"))
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert sandbox.store.count_usage_events() == 0


async def test_money_is_exact(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    plan = {"name": "Dimes", "unitType": "dimes", "unitPriceUsd": 0.1}
    assert (await client.post("/v1/pricing-plans", json=plan)).status_code == 201
    customer_id = await new_customer(client)
    response = await client.post("/v1/usage", json=usage(customer_id, "d", meter="dimes", quantity=3))
    assert response.json()["charge"]["amountUsdc"] == "0.300000"
    tiny = await client.post("/v1/usage", json=usage(customer_id, "t", meter="tokens", quantity=7))
    assert tiny.json()["charge"]["amountUsdc"] == "0.000070"
    assert tiny.json()["charge"]["amountToken"] == "70"
    assert sandbox.store.balance(customer_id) == Decimal("99.699930")
    assert sandbox.store.charges_total(customer_id) == Decimal("0.300070")


async def test_concurrent_charges_never_overdraw() -> None:
    sandbox = Sandbox(SandboxConfig(starting_balance_usdc=Decimal("1.000000")))
    async with httpx2.AsyncClient(
        transport=sandbox.transport(),
        base_url="http://sandbox.test",
        headers={"Authorization": "Bearer sk_test_concurrent"},
    ) as client:
        customer_id = await new_customer(client)
        statuses: list[int] = []

        async def charge(index: int) -> None:
            response = await client.post("/v1/usage", json=usage(customer_id, f"c{index}", quantity=100))
            statuses.append(response.status_code)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for index in range(20):
                    group.start_soon(charge, index)
    assert sorted(statuses) == [201] * 10 + [402] * 10
    assert sandbox.store.balance(customer_id) == Decimal("0")
    assert sandbox.store.count_charges(customer_id) == 10


async def test_payment_required_body_carries_payment_and_checkout_url() -> None:
    sandbox = Sandbox(SandboxConfig(starting_balance_usdc=Decimal("0.001")))
    async with httpx2.AsyncClient(
        transport=sandbox.transport(),
        base_url="http://sandbox.test",
        headers={"Authorization": "Bearer sk_test_poorcustomer"},
    ) as client:
        customer_id = await new_customer(client)
        response = await client.post("/v1/usage", json=usage(customer_id, "big", quantity=2))
    body = response.json()
    assert response.status_code == 402
    assert body["code"] == "PAYMENT_REQUIRED"
    assert body["payment"]["amount"] == "0.002000"
    assert body["payment"]["currency"] == "USDC"
    assert body["checkout_url"].endswith("/v1/checkout")
    assert sandbox.store.count_usage_events() == 0


async def test_concurrent_identical_replays_charge_once(client: httpx2.AsyncClient, sandbox: Sandbox) -> None:
    customer_id = await new_customer(client)
    charge_ids: set[str] = set()

    async def charge() -> None:
        response = await client.post("/v1/usage", json=usage(customer_id, "same-key", quantity=10))
        charge_ids.add(response.json()["charge"]["id"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(charge)
    assert len(charge_ids) == 1
    assert sandbox.store.count_charges(customer_id) == 1
    assert sandbox.store.balance(customer_id) == Decimal("99.99")


async def test_seeded_pricing_plans_and_duplicate_plan_conflict(client: httpx2.AsyncClient) -> None:
    plans = (await client.get("/v1/pricing-plans")).json()
    by_unit = {plan["unitType"]: plan for plan in plans["data"]}
    assert {"api_calls", "tokens", "llm_tokens", "compute_seconds"} <= set(by_unit)
    assert by_unit["api_calls"]["unitPriceUsd"] == "0.001"
    duplicate = {"name": "More calls", "unitType": "api_calls", "unitPriceUsd": 0.5}
    response = await client.post("/v1/pricing-plans", json=duplicate)
    assert response.status_code == 409
    assert response.json()["code"] == "DUPLICATE_PRICING_PLAN"
    assert response.json()["existingPlanId"] == by_unit["api_calls"]["id"]
    missing = await client.post("/v1/pricing-plans", json={"name": "x", "unitType": "x"})
    assert missing.status_code == 422


async def test_hypothetical_estimate_prices_items(client: httpx2.AsyncClient) -> None:
    body = {
        "items": [
            {"usageType": "api_calls", "quantity": 1000},
            {"usageType": "mystery", "quantity": 4},
            {"usageType": "tokens", "quantity": 10, "unitPriceOverride": "0.5"},
        ],
        "defaultUnitPrice": "0.25",
    }
    estimate = (await client.post("/v1/cost-estimate/hypothetical", json=body)).json()
    items = {item["usageType"]: item for item in estimate["lineItems"]}
    assert items["api_calls"]["estimatedCostUsdc"] == "1.000000"
    assert items["api_calls"]["hasPricingPlan"] is True
    assert items["mystery"]["estimatedCostUsdc"] == "1.000000"
    assert items["mystery"]["hasPricingPlan"] is False
    assert items["tokens"]["estimatedCostUsdc"] == "5.000000"
    assert estimate["estimatedTotalUsdc"] == "7.000000"
    bad = await client.post("/v1/cost-estimate/hypothetical", json={"items": [{"usageType": "x"}]})
    assert bad.status_code == 422


async def test_estimate_from_usage_sums_recorded_usage(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    for index in range(3):
        await client.post("/v1/usage/internal", json=usage(customer_id, f"u{index}", quantity=100))
    body = {
        "periodStart": "2000-01-01T00:00:00Z",
        "periodEnd": "2999-01-01T00:00:00Z",
        "customerId": customer_id,
        "customPricing": {"api_calls": "0.01"},
    }
    estimate = (await client.post("/v1/cost-estimate/from-usage", json=body)).json()
    [item] = estimate["lineItems"]
    assert item["quantity"] == "300"
    assert item["eventCount"] == 3
    assert estimate["estimatedTotalUsdc"] == "3.000000"
    missing = await client.post("/v1/cost-estimate/from-usage", json={"periodStart": "2000-01-01"})
    assert missing.status_code == 422


@pytest.mark.parametrize(("key", "rest"), [("pk_test_abc", "it has 3 characters"), ("sk_test_a b!cdefgh", "outside")])
async def test_malformed_test_key_401_says_what_a_valid_key_looks_like_without_echoing_it(
    sandbox: Sandbox, key: str, rest: str
) -> None:
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test") as http:
        response = await http.get("/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    error = response.json()["error"]
    head = key[:8]
    assert f"after {head} it needs at least 8 of A-Z a-z 0-9 _ -, e.g. {head}local_dev_key" in error
    assert rest in error
    assert key not in error
