from __future__ import annotations

import httpx2
import pytest
from sandbox_helpers import new_customer

pytestmark = pytest.mark.anyio


async def _workflow(client: httpx2.AsyncClient, slug: str = "research-agent") -> str:
    response = await client.post("/v1/workflows", json={"name": "Research agent", "slug": slug})
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


async def test_workflow_create_list_and_duplicate_slug(client: httpx2.AsyncClient) -> None:
    workflow_id = await _workflow(client)
    listed = (await client.get("/v1/workflows")).json()
    assert [w["id"] for w in listed["data"]] == [workflow_id]
    assert listed["data"][0]["productSurface"] == "CUSTOM"
    duplicate = await client.post("/v1/workflows", json={"name": "Again", "slug": "research-agent"})
    assert duplicate.status_code == 409
    bad_slug = await client.post("/v1/workflows", json={"name": "Bad", "slug": "Not A Slug"})
    assert bad_slug.status_code == 422
    assert bad_slug.json()["details"][0]["path"] == "slug"


async def test_run_lifecycle_with_events_and_timeline(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    workflow_id = await _workflow(client)
    run = (await client.post("/v1/runs", json={"customerId": customer_id, "workflowId": workflow_id})).json()
    assert run["status"] == "PENDING"
    assert run["workflowName"] == "Research agent"
    first = await client.post(
        "/v1/run-events",
        json={"runId": run["id"], "eventType": "llm.call", "quantity": 1200, "costUnits": 0.5, "idempotencyKey": "e1"},
    )
    assert first.status_code == 201
    assert first.json()["isDuplicate"] is False
    assert (await client.get(f"/v1/runs/{run['id']}")).json()["status"] == "RUNNING"
    replay = await client.post(
        "/v1/run-events",
        json={"runId": run["id"], "eventType": "llm.call", "quantity": 1200, "costUnits": 0.5, "idempotencyKey": "e1"},
    )
    assert replay.json() == {**first.json(), "isDuplicate": True}
    batch = await client.post(
        "/v1/run-events/batch",
        json={
            "events": [
                {"runId": run["id"], "eventType": "tool.call", "costUnits": 0.25, "idempotencyKey": "e2"},
                {"runId": run["id"], "eventType": "tool.call", "idempotencyKey": "e1"},
                {"eventType": "orphan"},
            ]
        },
    )
    assert batch.status_code == 201
    assert (batch.json()["created"], batch.json()["duplicates"], batch.json()["skipped"]) == (1, 1, 1)
    details = (await client.get(f"/v1/runs/{run['id']}")).json()
    assert details["totals"] == {"eventCount": 2, "totalQuantity": "1201", "totalCostUnits": "0.75"}
    assert details["_links"]["timeline"] == f"/v1/runs/{run['id']}/timeline"
    ended = await client.patch(f"/v1/runs/{run['id']}", json={"status": "COMPLETED"})
    assert ended.status_code == 200
    assert ended.json()["status"] == "COMPLETED"
    assert ended.json()["endedAt"] is not None
    assert ended.json()["durationMs"] >= 0
    assert ended.json()["eventCount"] == 2
    assert ended.json()["totalCostUnits"] == "0.75"
    again = await client.patch(f"/v1/runs/{run['id']}", json={"status": "FAILED"})
    assert again.status_code == 409
    assert again.json()["code"] == "RUN_ALREADY_ENDED"
    late = await client.post("/v1/run-events", json={"runId": run["id"], "eventType": "late"})
    assert late.status_code == 409

    page = (await client.get(f"/v1/runs/{run['id']}/timeline", params={"limit": 1})).json()
    assert page["status"] == "COMPLETED"
    assert [e["eventType"] for e in page["events"]] == ["llm.call"]
    assert page["hasMore"] is True
    assert page["summary"]["totalEvents"] == 2
    assert page["summary"]["byType"] == {"llm.call": 1, "tool.call": 1}
    rest = (
        await client.get(f"/v1/runs/{run['id']}/timeline", params={"limit": 1, "cursor": page["nextCursor"]})
    ).json()
    assert [e["eventType"] for e in rest["events"]] == ["tool.call"]
    assert rest["hasMore"] is False
    assert rest["nextCursor"] is None


async def test_run_errors(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    workflow_id = await _workflow(client)
    missing_workflow = await client.post("/v1/runs", json={"customerId": customer_id, "workflowId": "nope"})
    assert missing_workflow.status_code == 404
    missing_customer = await client.post("/v1/runs", json={"customerId": "nope", "workflowId": workflow_id})
    assert missing_customer.status_code == 404
    run = (await client.post("/v1/runs", json={"customerId": customer_id, "workflowId": workflow_id})).json()
    bad_status = await client.patch(f"/v1/runs/{run['id']}", json={"status": "DONE"})
    assert bad_status.status_code == 422
    assert (await client.get("/v1/runs/nope")).status_code == 404
    assert (await client.get("/v1/runs/nope/timeline")).status_code == 404
    assert (await client.post("/v1/run-events", json={"eventType": "x"})).status_code == 422


async def test_record_run_auto_creates_workflow_from_unknown_slug(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    body = {
        "customerId": customer_id,
        "workflow": "nightly_data-sync",
        "status": "COMPLETED",
        "externalRunId": "ext-1",
        "events": [{"eventType": "fetch", "quantity": 3, "costUnits": 1.5}, {"eventType": "store"}],
    }
    response = await client.post("/v1/runs/record", json=body)
    assert response.status_code == 201
    result = response.json()
    assert result["run"]["workflowName"] == "Nightly Data Sync"
    assert result["run"]["status"] == "COMPLETED"
    assert result["events"] == {"created": 2, "duplicates": 0}
    assert result["totalCostUnits"] == "1.5"
    assert result["summary"].startswith("✓ Nightly Data Sync: 2 events recorded")
    workflows = (await client.get("/v1/workflows")).json()["data"]
    assert [w["slug"] for w in workflows] == ["nightly_data-sync"]
    duplicate = await client.post("/v1/runs/record", json=body)
    assert duplicate.status_code == 409
    second = await client.post("/v1/runs/record", json={**body, "externalRunId": "ext-2", "status": "FAILED"})
    assert second.json()["run"]["workflowId"] == result["run"]["workflowId"]
    assert second.json()["summary"].startswith("✗")
