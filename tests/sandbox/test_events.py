"""The execution-events ledger: POST /events replay, filters, pagination, traces, usage and run events in it."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from sandbox_helpers import PK, new_customer, usage

pytestmark = pytest.mark.anyio


async def _emit(client: httpx2.AsyncClient, customer: str, key: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/events", json={"customerId": customer, "idempotencyKey": key, **fields})
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    return event


async def test_post_event_and_idempotent_replay(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    first = await _emit(client, customer, "k1", actionName="search", eventType="TOOL_CALL")
    assert first["wasIdempotentReplay"] is False
    assert (first["eventType"], first["actionName"], first["outcome"]) == ("TOOL_CALL", "search", "SUCCEEDED")
    receipt = first["receipt"]
    assert set(receipt) == {"batchId", "eventCount", "batchHash", "receivedAt", "signature", "signerAddress"}
    assert receipt["eventCount"] == 1
    assert receipt["signerAddress"].startswith("0x")
    again = await _emit(client, customer, "k1", actionName="other")
    assert again["wasIdempotentReplay"] is True
    assert again["id"] == first["id"]
    assert again["actionName"] == "search"
    assert again["receipt"] == receipt
    listed = (await client.get("/v1/events", params={"idempotencyKey": "k1"})).json()
    assert listed["pagination"]["total"] == 1


async def test_post_event_validation_and_external_customer(client: httpx2.AsyncClient) -> None:
    missing = await client.post("/v1/events", json={"actionName": "x"})
    assert missing.status_code == 422
    assert {d["path"] for d in missing.json()["details"]} == {"customerId", "idempotencyKey"}
    bad = await client.post(
        "/v1/events", json={"customerId": "c", "idempotencyKey": "k", "eventType": "NOPE", "outcome": "MEH"}
    )
    assert {d["path"] for d in bad.json()["details"]} == {"eventType", "outcome"}
    created = await client.post("/v1/events", json={"externalCustomerId": "ext-9", "idempotencyKey": "k2"})
    assert created.status_code == 201
    customers = (await client.get("/v1/customers")).json()["data"]
    assert [c["externalCustomerId"] for c in customers] == ["ext-9"]
    unknown_run = await client.post(
        "/v1/events", json={"externalCustomerId": "ext-9", "idempotencyKey": "k3", "runId": "x"}
    )
    assert unknown_run.status_code == 404
    assert (  # a public key may record events: refused here only because the customer is unknown
        await client.post("/v1/events", headers=PK, json={"customerId": "c", "idempotencyKey": "k"})
    ).status_code == 404


async def test_usage_and_run_writes_appear_in_the_ledger(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    tracked = await client.post("/v1/usage/internal", json=usage(customer, "u-1", "tokens", 42))
    assert tracked.status_code == 201
    charged = await client.post("/v1/usage", json=usage(customer, "u-2", "api_calls", 3))
    assert charged.status_code == 201
    workflow = await client.post("/v1/workflows", json={"name": "Agent", "slug": "agent"})
    run = await client.post(
        "/v1/runs", json={"customerId": customer, "workflowId": workflow.json()["id"], "correlationId": "corr-1"}
    )
    run_id = run.json()["id"]
    step = await client.post(
        "/v1/run-events", json={"runId": run_id, "eventType": "LLM_CALL", "costUnits": 0.25, "idempotencyKey": "r-1"}
    )
    assert step.status_code == 201

    ledger = (await client.get("/v1/events", params={"customerId": customer})).json()
    by_id = {entry["id"]: entry for entry in ledger["data"]}
    assert ledger["pagination"] == {"total": 3, "limit": 50, "offset": 0, "hasMore": False}
    internal = by_id[tracked.json()["usageEventId"]]
    assert (internal["eventType"], internal["actionName"], internal["quantity"]) == ("USAGE", "tokens", "42")
    assert internal["chargeId"] is None
    billed = by_id[charged.json()["usageEventId"]]
    assert billed["chargeId"] == charged.json()["charge"]["id"]
    assert billed["costUsdc"] == "0.003000"
    run_event = by_id[step.json()["id"]]
    assert run_event["runId"] == run_id
    assert run_event["workflowId"] == workflow.json()["id"]
    assert run_event["costUsdc"] == "0.250000"
    assert run_event["correlationId"] == "corr-1"

    only_run = (await client.get("/v1/events", params={"runId": run_id})).json()
    assert [e["id"] for e in only_run["data"]] == [step.json()["id"]]
    only_usage = (await client.get("/v1/events", params={"eventType": "USAGE", "actionName": "api_calls"})).json()
    assert [e["id"] for e in only_usage["data"]] == [billed["id"]]
    per_customer = (await client.get(f"/v1/customers/{customer}/events")).json()
    assert per_customer["pagination"]["total"] == 3
    assert (await client.get("/v1/customers/cnope/events")).status_code == 404
    traced = (await client.get("/v1/trace/corr-1")).json()
    assert [e["id"] for e in traced["events"]] == [step.json()["id"]]
    assert traced["runIds"] == [run_id]
    assert (await client.get("/v1/trace/unknown")).status_code == 404


async def test_filters_and_pagination(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    other = await new_customer(client, "user-2")
    for index in range(5):
        await _emit(client, customer, f"a{index}", outcome="FAILED" if index % 2 else "SUCCEEDED")
    await _emit(client, other, "b0")
    page = (await client.get("/v1/events", params={"customerId": customer, "limit": 2, "offset": 2})).json()
    assert page["pagination"] == {"total": 5, "limit": 2, "offset": 2, "hasMore": True}
    assert [e["idempotencyKey"] for e in page["data"]] == ["a2", "a1"]  # newest first
    last = (await client.get("/v1/events", params={"customerId": customer, "limit": 2, "offset": 4})).json()
    assert last["pagination"]["hasMore"] is False
    assert [e["idempotencyKey"] for e in last["data"]] == ["a0"]
    failed = (await client.get("/v1/events", params={"outcome": "FAILED"})).json()
    assert sorted(e["idempotencyKey"] for e in failed["data"]) == ["a1", "a3"]
    future = (await client.get("/v1/events", params={"from": "2999-01-01T00:00:00Z"})).json()
    assert future["pagination"]["total"] == 0
    past = (await client.get("/v1/events", params={"to": "2000-01-01T00:00:00Z"})).json()
    assert past["data"] == []
    everything = (await client.get("/v1/events", params={"from": "2000-01-01", "to": "2999-01-01"})).json()
    assert everything["pagination"]["total"] == 6
    bad = await client.get("/v1/events", params={"limit": 0, "from": "yesterday"})
    assert {d["path"] for d in bad.json()["details"]} == {"limit", "from"}


async def test_event_detail_and_trace(client: httpx2.AsyncClient) -> None:
    customer = await new_customer(client)
    root = await _emit(client, customer, "root", actionName="plan")
    child = await _emit(client, customer, "child", parentEventId=root["id"], outcome="FAILED", inputHash="sha:in")
    retry = await _emit(
        client, customer, "retry", parentEventId=root["id"], retryOfEventId=child["id"], attemptNumber=2
    )
    grandchild = await _emit(client, customer, "grand", parentEventId=retry["id"])

    detail = (await client.get(f"/v1/events/{root['id']}")).json()
    assert [e["id"] for e in detail["childEvents"]] == [child["id"], retry["id"]]
    assert detail["retriedBy"] == []
    child_detail = (await client.get(f"/v1/events/{child['id']}")).json()
    assert child_detail["inputHash"] == "sha:in"
    assert [e["id"] for e in child_detail["retriedBy"]] == [retry["id"]]
    assert (await client.get("/v1/events/cnope")).status_code == 404

    trace = (await client.get(f"/v1/events/{grandchild['id']}/trace")).json()
    assert [e["id"] for e in trace["ancestors"]] == [root["id"], retry["id"]]
    assert trace["children"] == []
    assert trace["summary"]["hasFailures"] is False
    retry_trace = (await client.get(f"/v1/events/{retry['id']}/trace", params={"format": "tree"})).json()
    assert retry_trace["retryChain"]["originalEvent"]["id"] == child["id"]
    assert [e["id"] for e in retry_trace["retryChain"]["retries"]] == [retry["id"]]
    assert retry_trace["summary"]["hasFailures"] is True
    assert {a["type"] for a in retry_trace["anomalies"]} == {"FAILED_EVENT", "RETRY"}
    assert retry_trace["tree"]["id"] == root["id"]
    assert [c["id"] for c in retry_trace["tree"]["children"]] == [child["id"], retry["id"]]
