"""Routes for workflows, runs, run events and ``/runs/record``.

A run starts PENDING, becomes RUNNING with its first event, and ends with
``PATCH /runs/{id}`` (COMPLETED, FAILED, CANCELLED or TIMEOUT). Ending a run
that has ended already, or adding an event to it, is refused with **409
``RUN_ALREADY_ENDED``**. In ``POST /run-events/batch`` an event without
``runId`` is answered ``skipped`` (the sandbox keeps no standalone events).
The timeline pages with an opaque ``cursor`` (the last event's sequence
number) and has no anomaly detection (``anomalies`` is always empty); its
``costUsdc`` and ``summary.totalCostUsdc`` are the events' ``costUnits`` as
6-decimal USDC strings (``costUsdc`` null for an event without ``costUnits``).

``GET /runs`` filters by ``customerId``, ``workflowId``, ``status`` and
``from``/``to`` (inclusive ISO-8601 bounds on ``startedAt``), newest first,
``limit`` 1–100 (default 50), each run with ``eventCount``,
``totalCostUnits`` and ``durationMs``. ``PATCH /workflows/{id}`` changes
``name``, ``description``, ``productSurface``, ``chain``, ``metadata`` and
``isActive`` (the slug is fixed).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import Record, iso_at
from drip_mcp.sandbox.store.clock import parse_iso
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, number, services, usdc

__all__ = ["routes"]

_SLUG = re.compile(r"[a-z0-9_-]+")
_SURFACES = ("API", "RPC", "WEBHOOK", "AGENT", "PIPELINE", "CUSTOM")
_END_STATUSES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _workflow_view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "slug": row["slug"],
        "productSurface": row["product_surface"],
        "chain": row["chain"],
        "description": row["description"],
        "metadata": _load(row["metadata"]),
        "isActive": bool(row["is_active"]),
        "runCount": row["run_count"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _duration_ms(run: Record) -> int | None:
    return None if run["ended_ms"] is None else run["ended_ms"] - run["started_ms"]


def _cost(value: Decimal) -> str:
    return str(value.normalize()) if value else "0"


def _run_view(run: Record) -> dict[str, Any]:
    return {
        "id": run["id"],
        "customerId": run["customer_id"],
        "customerName": run["customer_name"],
        "workflowId": run["workflow_id"],
        "workflowName": run["workflow_name"],
        "status": run["status"],
        "startedAt": run["started_at"],
        "endedAt": run["ended_at"],
        "durationMs": _duration_ms(run),
        "errorMessage": run["error_message"],
        "errorCode": run["error_code"],
        "correlationId": run["correlation_id"],
        "metadata": _load(run["metadata"]),
        "createdAt": run["created_at"],
    }


def _event_view(event: Record, is_duplicate: bool) -> dict[str, Any]:
    return {
        "id": event["id"],
        "runId": event["run_id"],
        "eventType": event["event_type"],
        "quantity": number(Decimal(event["quantity"])),
        "units": event["units"],
        "description": event["description"],
        "costUnits": None if event["cost_units"] is None else number(Decimal(event["cost_units"])),
        "isDuplicate": is_duplicate,
        "timestamp": event["created_at"],
    }


def _event_fields(body: Body, *, run_required: bool) -> Record:
    """Validate one run event (``POST /run-events`` body or one batch entry)."""
    run_id = body.required_string("runId") if run_required else body.string("runId")
    quantity = body.decimal("quantity", positive=False)
    return {
        "run_id": run_id,
        "event_type": body.required_string("eventType", max_length=100),
        "quantity": Decimal(1) if quantity is None else quantity,
        "units": body.string("units", max_length=50),
        "description": body.string("description", max_length=500),
        "cost_units": body.decimal("costUnits", positive=False),
        "correlation_id": body.string("correlationId", max_length=255),
        "parent_event_id": body.string("parentEventId"),
        "span_id": body.string("spanId", max_length=255),
        "idempotency_key": body.string("idempotencyKey", max_length=128),
        "metadata": body.mapping("metadata"),
    }


@endpoint()
async def create_workflow(request: Request, body: Body) -> Response:
    """POST /workflows."""
    fields = {
        "name": body.required_string("name", max_length=255),
        "slug": body.required_string("slug", max_length=100, pattern=_SLUG),
        "product_surface": body.string("productSurface", choices=_SURFACES),
        "chain": body.string("chain"),
        "description": body.string("description", max_length=1000),
        "metadata": body.mapping("metadata"),
    }
    body.check()
    return json_response(_workflow_view(services(request).store.create_workflow(fields)), 201)


@endpoint()
async def list_workflows(request: Request, body: Body) -> Response:
    """GET /workflows."""
    query = Query(request)
    limit = query.int_param("limit", default=50, minimum=1, maximum=100)
    query.check()
    rows = services(request).store.list_workflows(limit=limit)
    return json_response({"data": [_workflow_view(row) for row in rows], "count": len(rows)})


@endpoint()
async def get_workflow(request: Request, body: Body) -> Response:
    """GET /workflows/{id}."""
    return json_response(_workflow_view(services(request).store.workflow(request.path_params["id"])))


@endpoint()
async def update_workflow(request: Request, body: Body) -> Response:
    """PATCH /workflows/{id}."""
    changes: Record = {}
    if "name" in body.data:
        changes["name"] = body.required_string("name", max_length=255)
    if "description" in body.data:
        changes["description"] = body.string("description", max_length=1000)
    if "productSurface" in body.data:
        changes["product_surface"] = body.required_string("productSurface", choices=_SURFACES)
    if "chain" in body.data:
        changes["chain"] = body.string("chain")
    if "metadata" in body.data:
        changes["metadata"] = body.mapping("metadata")
    if "isActive" in body.data:
        changes["is_active"] = body.boolean("isActive", True)
    if "slug" in body.data:
        body.fail("slug", "cannot be changed")
    body.check()
    workflow = services(request).store.update_workflow(request.path_params["id"], changes)
    return json_response(_workflow_view(workflow))


def _bound(query: Query, name: str) -> str | None:
    raw = query.string(name)
    moment = None if raw is None else parse_iso(raw)
    if raw is not None and moment is None:
        query.fail(name, "must be an ISO-8601 date-time")
    return None if moment is None else iso_at(moment.timestamp())


@endpoint()
async def list_runs(request: Request, body: Body) -> Response:
    """GET /runs: ``{data, count}``, newest first."""
    query = Query(request)
    filters = {
        "customer_id": query.string("customerId"),
        "workflow_id": query.string("workflowId"),
        "status": query.string("status", choices=("PENDING", "RUNNING", *_END_STATUSES)),
        "since": _bound(query, "from"),
        "until": _bound(query, "to"),
    }
    limit = query.int_param("limit", default=50, minimum=1, maximum=100)
    query.check()
    runs = services(request).store.list_runs(**filters, limit=limit)
    return json_response(
        {
            "data": [
                {
                    **_run_view(run),
                    "eventCount": run["event_count"],
                    "totalCostUnits": _cost(run["total_cost_units"]),
                }
                for run in runs
            ],
            "count": len(runs),
        }
    )


@endpoint()
async def start_run(request: Request, body: Body) -> Response:
    """POST /runs: a PENDING run."""
    fields = {
        "customer_id": body.required_string("customerId"),
        "workflow_id": body.required_string("workflowId"),
        "external_run_id": body.string("externalRunId", max_length=255),
        "correlation_id": body.string("correlationId", max_length=255),
        "parent_run_id": body.string("parentRunId"),
        "metadata": body.mapping("metadata"),
    }
    body.check()
    return json_response(_run_view(services(request).store.start_run(fields)), 201)


@endpoint()
async def get_run(request: Request, body: Body) -> Response:
    """GET /runs/{id}: the run with totals."""
    run = services(request).store.run(request.path_params["id"])
    return json_response(
        {
            **_run_view(run),
            "totals": {
                "eventCount": run["event_count"],
                "totalQuantity": _cost(run["total_quantity"]),
                "totalCostUnits": _cost(run["total_cost_units"]),
            },
            "_links": {"timeline": f"/v1/runs/{run['id']}/timeline"},
        }
    )


@endpoint()
async def end_run(request: Request, body: Body) -> Response:
    """PATCH /runs/{id}: end the run."""
    status = body.required_string("status", choices=_END_STATUSES)
    error_message = body.string("errorMessage", max_length=2000)
    error_code = body.string("errorCode", max_length=100)
    body.mapping("metadata")
    body.check()
    run = services(request).store.end_run(
        request.path_params["id"], status=status, error_message=error_message, error_code=error_code
    )
    return json_response(
        {
            "id": run["id"],
            "status": run["status"],
            "startedAt": run["started_at"],
            "endedAt": run["ended_at"],
            "durationMs": _duration_ms(run),
            "eventCount": run["event_count"],
            "totalCostUnits": _cost(run["total_cost_units"]),
        }
    )


@endpoint()
async def run_timeline(request: Request, body: Body) -> Response:
    """GET /runs/{id}/timeline: events in order, cursor-paged, with a summary of the whole run."""
    query = Query(request)
    limit = query.int_param("limit", default=100, minimum=1, maximum=500)
    after = query.int_param("cursor", default=0, minimum=0, maximum=2**62)
    query.check()
    store = services(request).store
    run = store.run(request.path_params["id"])
    page = store.run_events(run["id"], after_seq=after, limit=limit + 1)
    has_more = len(page) > limit
    page = page[:limit]
    by_type: dict[str, int] = {}
    for event in store.run_events(run["id"], after_seq=0, limit=2**31):
        by_type[event["event_type"]] = by_type.get(event["event_type"], 0) + 1
    return json_response(
        {
            "runId": run["id"],
            **{key: value for key, value in _run_view(run).items() if key not in ("id", "createdAt")},
            "events": [_timeline_event(event) for event in page],
            "anomalies": [],
            "summary": {
                "totalEvents": run["event_count"],
                "byType": by_type,
                "byOutcome": {"SUCCESS": run["event_count"]},
                "retriedEvents": 0,
                "failedEvents": 0,
                "totalCostUsdc": usdc(run["total_cost_units"]),
                "totalQuantity": _cost(run["total_quantity"]),
                "totalCostUnits": _cost(run["total_cost_units"]),
            },
            "hasMore": has_more,
            "nextCursor": str(page[-1]["seq"]) if has_more else None,
        }
    )


def _timeline_event(event: Record) -> dict[str, Any]:
    return {
        "id": event["id"],
        "eventType": event["event_type"],
        "actionName": None,
        "outcome": "SUCCESS",
        "explanation": None,
        "description": event["description"],
        "timestamp": event["created_at"],
        "durationMs": None,
        "parentEventId": event["parent_event_id"],
        "retryOfEventId": None,
        "attemptNumber": 1,
        "retriedByEventId": None,
        "costUsdc": None if event["cost_units"] is None else usdc(Decimal(event["cost_units"])),
        "isRetry": False,
        "retryChain": None,
        "correlationId": event["correlation_id"],
        "metadata": {
            "usageType": event["event_type"],
            "quantity": number(Decimal(event["quantity"])),
            "units": event["units"],
        },
    }


@endpoint()
async def emit_event(request: Request, body: Body) -> Response:
    """POST /run-events: one event on a run (replays by idempotencyKey)."""
    fields = _event_fields(body, run_required=True)
    body.check()
    [(event, is_duplicate)] = services(request).store.add_run_events([fields])
    return json_response(_event_view(event, is_duplicate), 201)


@endpoint()
async def emit_events_batch(request: Request, body: Body) -> Response:
    """POST /run-events/batch."""
    entries = [_event_fields(entry, run_required=False) for entry in body.objects("events", required=True)]
    body.check()
    with_run = [entry for entry in entries if entry["run_id"] is not None]
    stored = iter(services(request).store.add_run_events(with_run))
    results: list[dict[str, Any]] = []
    for entry in entries:
        if entry["run_id"] is None:
            results.append(
                {
                    "id": None,
                    "eventType": entry["event_type"],
                    "isDuplicate": False,
                    "skipped": True,
                    "reason": "runId is required in the sandbox",
                }
            )
            continue
        event, is_duplicate = next(stored)
        results.append({"id": event["id"], "eventType": event["event_type"], "isDuplicate": is_duplicate})
    duplicates = sum(1 for result in results if result["isDuplicate"])
    skipped = sum(1 for result in results if result.get("skipped"))
    return json_response(
        {
            "success": True,
            "created": len(results) - duplicates - skipped,
            "duplicates": duplicates,
            "skipped": skipped,
            "events": results,
        },
        201,
    )


@endpoint()
async def record_run(request: Request, body: Body) -> Response:
    """POST /runs/record: a whole run in one call."""
    fields = {
        "customer_id": body.required_string("customerId"),
        "workflow": body.required_string("workflow", max_length=100),
        "status": body.required_string("status", choices=_END_STATUSES),
        "error_message": body.string("errorMessage", max_length=2000),
        "error_code": body.string("errorCode", max_length=100),
        "external_run_id": body.string("externalRunId", max_length=255),
        "correlation_id": body.string("correlationId", max_length=255),
        "parent_run_id": body.string("parentRunId"),
        "metadata": body.mapping("metadata"),
    }
    events = [_event_fields(entry, run_required=False) for entry in body.objects("events")]
    body.check()
    run, created = services(request).store.record_run(fields, events)
    duration = _duration_ms(run)
    mark = {"COMPLETED": "✓", "FAILED": "✗"}.get(run["status"], "○")
    return json_response(
        {
            "run": {
                "id": run["id"],
                "workflowId": run["workflow_id"],
                "workflowName": run["workflow_name"],
                "status": run["status"],
                "durationMs": duration,
            },
            "events": {"created": created, "duplicates": 0},
            "totalCostUnits": _cost(run["total_cost_units"]),
            "summary": f"{mark} {run['workflow_name']}: {created} events recorded ({duration}ms)",
        },
        201,
    )


routes = [
    Route("/workflows", create_workflow, methods=["POST"]),
    Route("/workflows", list_workflows, methods=["GET"]),
    Route("/workflows/{id}", get_workflow, methods=["GET"]),
    Route("/workflows/{id}", update_workflow, methods=["PATCH"]),
    Route("/runs", start_run, methods=["POST"]),
    Route("/runs", list_runs, methods=["GET"]),
    Route("/runs/record", record_run, methods=["POST"]),
    Route("/runs/{id}", get_run, methods=["GET"]),
    Route("/runs/{id}", end_run, methods=["PATCH"]),
    Route("/runs/{id}/timeline", run_timeline, methods=["GET"]),
    Route("/run-events", emit_event, methods=["POST"]),
    Route("/run-events/batch", emit_events_batch, methods=["POST"]),
]
