"""GET /runs filters, GET/PATCH /workflows/{id}, timeline money as USDC strings, estimate usage_type alias."""

from __future__ import annotations

import httpx2
import pytest
from sandbox_helpers import new_customer

pytestmark = pytest.mark.anyio


async def _workflow(client: httpx2.AsyncClient, slug: str) -> str:
    response = await client.post("/v1/workflows", json={"name": slug.title(), "slug": slug})
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


async def test_list_runs_filters(client: httpx2.AsyncClient) -> None:
    alice, bob = await new_customer(client, "alice"), await new_customer(client, "bob")
    one, two = await _workflow(client, "one"), await _workflow(client, "two")
    a1 = (await client.post("/v1/runs", json={"customerId": alice, "workflowId": one})).json()["id"]
    await client.post("/v1/run-events", json={"runId": a1, "eventType": "x", "costUnits": 2, "idempotencyKey": "e1"})
    await client.patch(f"/v1/runs/{a1}", json={"status": "COMPLETED"})
    b2 = (await client.post("/v1/runs", json={"customerId": bob, "workflowId": two})).json()["id"]

    everything = (await client.get("/v1/runs")).json()
    assert [r["id"] for r in everything["data"]] == [b2, a1]
    assert everything["count"] == 2
    finished = everything["data"][1]
    assert (finished["eventCount"], finished["totalCostUnits"], finished["status"]) == (1, "2", "COMPLETED")
    assert isinstance(finished["durationMs"], int)
    assert everything["data"][0]["durationMs"] is None
    assert [r["id"] for r in (await client.get("/v1/runs", params={"customerId": alice})).json()["data"]] == [a1]
    assert [r["id"] for r in (await client.get("/v1/runs", params={"workflowId": two})).json()["data"]] == [b2]
    assert [r["id"] for r in (await client.get("/v1/runs", params={"status": "PENDING"})).json()["data"]] == [b2]
    assert (await client.get("/v1/runs", params={"from": "2999-01-01T00:00:00Z"})).json()["count"] == 0
    assert (await client.get("/v1/runs", params={"to": "2999-01-01T00:00:00Z", "limit": 1})).json()["count"] == 1
    assert (await client.get("/v1/runs", params={"status": "DONE"})).status_code == 422


async def test_get_and_patch_workflow(client: httpx2.AsyncClient) -> None:
    workflow_id = await _workflow(client, "agent")
    got = (await client.get(f"/v1/workflows/{workflow_id}")).json()
    assert (got["slug"], got["runCount"], got["isActive"]) == ("agent", 0, True)
    patched = await client.patch(
        f"/v1/workflows/{workflow_id}", json={"name": "Agent v2", "isActive": False, "metadata": {"v": 2}}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["isActive"], patched.json()["metadata"]) == (
        "Agent v2",
        False,
        {"v": 2},
    )
    assert (await client.patch(f"/v1/workflows/{workflow_id}", json={"slug": "x"})).status_code == 422
    assert (await client.get("/v1/workflows/cnope")).status_code == 404


async def test_timeline_money_is_six_decimal_usdc(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    workflow_id = await _workflow(client, "agent")
    run_id = (await client.post("/v1/runs", json={"customerId": customer, "workflowId": workflow_id})).json()["id"]
    await client.post(
        "/v1/run-events", json={"runId": run_id, "eventType": "a", "costUnits": 0.5, "idempotencyKey": "1"}
    )
    await client.post("/v1/run-events", json={"runId": run_id, "eventType": "b", "idempotencyKey": "2"})
    timeline = (await client.get(f"/v1/runs/{run_id}/timeline")).json()
    assert [e["costUsdc"] for e in timeline["events"]] == ["0.500000", None]
    assert timeline["summary"]["totalCostUsdc"] == "0.500000"


async def test_hypothetical_estimate_accepts_snake_case_usage_type(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/v1/cost-estimate/hypothetical",
        json={"items": [{"usage_type": "api_calls", "quantity": 10}, {"usageType": "tokens", "quantity": 100}]},
    )
    assert response.status_code == 200, response.text
    assert [item["usageType"] for item in response.json()["lineItems"]] == ["api_calls", "tokens"]
    assert response.json()["lineItems"][0]["estimatedCostUsdc"] == "0.010000"
    missing = await client.post("/v1/cost-estimate/hypothetical", json={"items": [{"quantity": 1}]})
    assert missing.json()["details"][0]["path"] == "items[0].usageType"
