from __future__ import annotations

from collections import Counter
from decimal import Decimal

import httpx2
import pytest
from sandbox_helpers import SK, usage

from drip_mcp.sandbox import FaultConfig, Sandbox, SandboxConfig

pytestmark = pytest.mark.anyio


def _client(sandbox: Sandbox) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK)


async def test_full_failure_rate_answers_configured_statuses_with_envelope() -> None:
    faults = FaultConfig(failure_rate=1.0, statuses=(503, 429, 500), retry_after_s=2.5, seed=7)
    sandbox = Sandbox(SandboxConfig(faults=faults))
    seen: Counter[int] = Counter()
    async with _client(sandbox) as client:
        for _ in range(30):
            response = await client.get("/v1/pricing-plans")
            seen[response.status_code] += 1
            body = response.json()
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "2.5"
                assert body["retryAfter"] == 2.5
                assert body["code"] == "RATE_LIMIT_EXCEEDED"
            elif response.status_code == 500:
                assert body["code"] == "INTERNAL_ERROR"
            else:
                assert body["code"] == "SERVICE_UNAVAILABLE"
        assert set(seen) == {503, 429, 500}
        health = await client.get("/health")
        assert health.status_code == 200


async def test_faults_spare_health_and_checkout_pages() -> None:
    sandbox = Sandbox(SandboxConfig(faults=FaultConfig(failure_rate=1.0, drop_rate=1.0)))
    async with _client(sandbox) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/checkout/unknown")).status_code == 404


async def test_drop_after_processing_commits_the_write_but_loses_the_response() -> None:
    sandbox = Sandbox(SandboxConfig(faults=FaultConfig(drop_rate=1.0, route_prefix="/v1/usage")))
    async with _client(sandbox) as client:
        customer_id = (await client.post("/v1/customers", json={"externalCustomerId": "c"})).json()["id"]
        with pytest.raises(httpx2.RemoteProtocolError):
            await client.post("/v1/usage", json=usage(customer_id, "lost-response", quantity=1000))
    assert sandbox.store.usage_idempotency_keys() == ["lost-response"]
    assert sandbox.store.balance(customer_id) == Decimal("99")


async def test_drop_before_processing_leaves_no_trace() -> None:
    faults = FaultConfig(drop_rate=1.0, drop_after_processing=False, route_prefix="/v1/usage")
    sandbox = Sandbox(SandboxConfig(faults=faults))
    async with _client(sandbox) as client:
        customer_id = (await client.post("/v1/customers", json={"externalCustomerId": "c"})).json()["id"]
        with pytest.raises(httpx2.RemoteProtocolError):
            await client.post("/v1/usage", json=usage(customer_id, "never-arrived"))
    assert sandbox.store.count_usage_events() == 0


async def test_retrying_a_dropped_charge_with_the_same_key_charges_once() -> None:
    faults = FaultConfig(drop_rate=0.5, route_prefix="/v1/usage", seed=3)
    sandbox = Sandbox(SandboxConfig(faults=faults))
    async with _client(sandbox) as client:
        customer_id = (await client.post("/v1/customers", json={"externalCustomerId": "c"})).json()["id"]
        for index in range(10):
            for _attempt in range(20):
                try:
                    response = await client.post("/v1/usage", json=usage(customer_id, f"k{index}", quantity=100))
                except httpx2.RemoteProtocolError:
                    continue
                assert response.status_code == 201
                break
    assert sandbox.store.count_charges(customer_id) == 10
    assert sandbox.store.balance(customer_id) == Decimal("99")


def test_fault_config_from_env() -> None:
    assert FaultConfig.from_env({}) is None
    config = FaultConfig.from_env(
        {
            "DRIP_SANDBOX_FAULT_RATE": "0.2",
            "DRIP_SANDBOX_DROP_RATE": "0.1",
            "DRIP_SANDBOX_LATENCY_MS": "5-20",
            "DRIP_SANDBOX_RETRY_AFTER_S": "1.5",
            "DRIP_SANDBOX_FAULT_SEED": "42",
        }
    )
    assert config == FaultConfig(failure_rate=0.2, drop_rate=0.1, latency_s=(0.005, 0.02), retry_after_s=1.5, seed=42)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig.from_env({"DRIP_SANDBOX_FAULT_RATE": "2"})
    with pytest.raises(ValueError, match="0-20"):
        FaultConfig.from_env({"DRIP_SANDBOX_LATENCY_MS": "20-5"})
