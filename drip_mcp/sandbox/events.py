"""Routes for the execution-events ledger (any key: runs and events are public-key work in DESIGN).

``POST /events`` records one event (``customerId`` or ``externalCustomerId``,
which creates the customer when unknown, like usage, and a required
``idempotencyKey``); a replay of the key answers 201 with the original event
and ``wasIdempotentReplay: true``. Defaults: ``eventType`` CUSTOM, ``outcome``
SUCCEEDED. A ``runId`` must name an existing run (404) and fills
``workflowId``/``correlationId`` from it. ``receipt`` is signed with a fixed
sandbox key (``signerAddress`` is a constant): it has the live shape, not its
cryptographic meaning.

Reads (``GET /events``, ``/events/{id}``, ``/events/{id}/trace``,
``/trace/{correlationId}``, ``/customers/{id}/events``) cover the whole
ledger: these events, every ``/usage*`` write (``eventType`` USAGE,
``actionName`` = the usage type, ``chargeId``/``costUsdc`` from its charge)
and every run event (with its run's customer and workflow, ``outcome``
SUCCEEDED). Lists are newest first, ``limit`` 1–100 (default 50) and
``offset``, answered as ``{data, pagination:{total, limit, offset, hasMore}}``.
``from``/``to`` are inclusive ISO-8601 bounds on ``createdAt``.

Trace: ``ancestors`` follow ``parentEventId`` up (root first, at most 100);
``children`` are the direct children; ``retryChain`` is the first attempt
(following ``retryOfEventId`` back) and every retry of it, oldest first;
``anomalies`` list FAILED events of the trace and retries
(``{type, eventId, message}``). ``format=tree`` adds ``tree`` (the event with
nested ``children``). ``GET /trace/{correlationId}`` is 404 when no event
carries it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import Record, from_micros, iso_at
from drip_mcp.sandbox.store.clock import parse_iso
from drip_mcp.sandbox.store.events import LEDGER_FILTERS
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services, usdc

__all__ = ["routes"]

EVENT_TYPES = (
    "USAGE",
    "API_CALL",
    "LLM_INFERENCE",
    "TOOL_CALL",
    "DATABASE",
    "FILE_IO",
    "NETWORK",
    "DECISION",
    "HUMAN_IN_LOOP",
    "MEMORY",
    "CUSTOM",
    "TOOL_CALL_START",
    "TOOL_CALL_END",
    "TOOL_CALL_ERROR",
    "TOOL_CALL_RETRY",
    "TRAINING",
    "FINE_TUNING",
)
OUTCOMES = ("PENDING", "SUCCEEDED", "FAILED", "SKIPPED", "RETRIED", "TIMEOUT", "CANCELLED")
_MAX_DEPTH = 100


def _cost(row: Record) -> str | None:
    if row["charge_micros"] is not None:
        return usdc(from_micros(int(row["charge_micros"])))
    if row["cost_units"] is not None:
        return usdc(Decimal(row["cost_units"]))
    return None


def _view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "eventType": row["event_type"],
        "actionName": row["action_name"],
        "outcome": row["outcome"],
        "explanation": row["explanation"],
        "idempotencyKey": row["idempotency_key"],
        "customerId": row["customer_id"],
        "runId": row["run_id"],
        "workflowId": row["workflow_id"],
        "parentEventId": row["parent_event_id"],
        "retryOfEventId": row["retry_of_event_id"],
        "attemptNumber": row["attempt_number"],
        "correlationId": row["correlation_id"],
        "createdAt": row["created_at"],
        "chargeId": row["charge_id"],
        "costUsdc": _cost(row),
        "usageType": row["usage_type"],
        "quantity": row["quantity"],
        "units": row["units"],
        "description": row["description"],
        "metadata": None if row["metadata"] is None else json.loads(row["metadata"]),
    }


def _page(rows: list[Record], total: int, limit: int, offset: int) -> Response:
    return json_response(
        {
            "data": [_view(row) for row in rows],
            "pagination": {"total": total, "limit": limit, "offset": offset, "hasMore": offset + len(rows) < total},
        }
    )


def _bound(query: Query, name: str) -> str | None:
    raw = query.string(name)
    if raw is None:
        return None
    moment = parse_iso(raw)
    if moment is None:
        query.fail(name, "must be an ISO-8601 date-time")
        return None
    return iso_at(moment.timestamp())


def _list(request: Request, fixed: Record) -> Response:
    query = Query(request)
    requested = {column: query.string(name) for name, column in LEDGER_FILTERS.items()}
    filters: Record = {column: value for column, value in requested.items() if value is not None} | fixed
    since, until = _bound(query, "from"), _bound(query, "to")
    limit = query.int_param("limit", default=50, minimum=1, maximum=100)
    offset = query.int_param("offset", default=0, minimum=0, maximum=2**31)
    query.check()
    rows, total = services(request).store.list_ledger(filters, since=since, until=until, limit=limit, offset=offset)
    return _page(rows, total, limit, offset)


@endpoint()
async def create(request: Request, body: Body) -> Response:
    """POST /events."""
    customer_id = body.string("customerId")
    external_id = body.string("externalCustomerId", max_length=255)
    if customer_id is None and external_id is None and not body.errors:
        body.fail("customerId", "customerId or externalCustomerId is required")
    fields: Record = {
        "idempotency_key": body.required_string("idempotencyKey", max_length=128),
        "event_type": body.string("eventType", choices=EVENT_TYPES) or "CUSTOM",
        "action_name": body.string("actionName", max_length=255),
        "outcome": body.string("outcome", choices=OUTCOMES) or "SUCCEEDED",
        "explanation": body.string("explanation", max_length=2000),
        "metadata": body.mapping("metadata"),
        "quantity": body.decimal("quantity", positive=False),
        "usage_type": body.string("usageType", max_length=100),
        "units": body.string("units", max_length=50),
        "description": body.string("description", max_length=500),
        "run_id": body.string("runId"),
        "workflow_id": body.string("workflowId"),
        "parent_event_id": body.string("parentEventId"),
        "retry_of_event_id": body.string("retryOfEventId"),
        "attempt_number": body.integer("attemptNumber", minimum=1, maximum=1000),
        "correlation_id": body.string("correlationId", max_length=255),
        "span_id": body.string("spanId", max_length=255),
        "input_hash": body.string("inputHash", max_length=255),
        "output_hash": body.string("outputHash", max_length=255),
        "duration_ms": body.integer("durationMs", minimum=0, maximum=2**53),
        "error_message": body.string("errorMessage", max_length=2000),
        "error_code": body.string("errorCode", max_length=100),
    }
    body.check()
    event, replay = services(request).store.record_execution_event(customer_id, external_id, fields)
    receipt = json.loads(event["receipt"])
    return json_response(
        {
            "id": event["id"],
            "eventType": event["event_type"],
            "actionName": event["action_name"],
            "outcome": event["outcome"],
            "idempotencyKey": event["idempotency_key"],
            "customerId": event["customer_id"],
            "createdAt": event["created_at"],
            "wasIdempotentReplay": replay,
            "receipt": receipt,
        },
        201,
    )


@endpoint()
async def list_events(request: Request, body: Body) -> Response:
    """GET /events."""
    return _list(request, {})


@endpoint()
async def customer_events(request: Request, body: Body) -> Response:
    """GET /customers/{id}/events (404 for an unknown customer)."""
    customer = services(request).store.customer(request.path_params["id"])
    return _list(request, {"customer_id": customer["id"]})


@endpoint()
async def get_event(request: Request, body: Body) -> Response:
    """GET /events/{id}: the entry with hashes, children, retries and (for POST /events) its receipt."""
    store = services(request).store
    row = store.ledger_entry(request.path_params["id"])
    return json_response(
        {
            **_view(row),
            "inputHash": row["input_hash"],
            "outputHash": row["output_hash"],
            "childEvents": [_view(child) for child in store.ledger_by("parent_event_id", row["id"])],
            "retriedBy": [_view(retry) for retry in store.ledger_by("retry_of_event_id", row["id"])],
            "receipt": store.execution_receipt(row["id"]),
        }
    )


def _anomalies(rows: list[Record]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["outcome"] in ("FAILED", "TIMEOUT"):
            found.setdefault(row["id"], {"type": "FAILED_EVENT", "eventId": row["id"], "message": f"{row['outcome']}"})
        elif row["retry_of_event_id"] is not None:
            found.setdefault(
                row["id"],
                {"type": "RETRY", "eventId": row["id"], "message": f"Retry of {row['retry_of_event_id']}"},
            )
    return list(found.values())


def _tree(store: Any, row: Record, depth: int = 0) -> dict[str, Any]:
    children = store.ledger_by("parent_event_id", row["id"]) if depth < _MAX_DEPTH else []
    return {**_view(row), "children": [_tree(store, child, depth + 1) for child in children]}


@endpoint()
async def trace(request: Request, body: Body) -> Response:
    """GET /events/{id}/trace."""
    query = Query(request)
    fmt = query.string("format", choices=("json", "tree")) or "json"
    query.check()
    store = services(request).store
    event = store.ledger_entry(request.path_params["id"])
    ancestors: list[Record] = []
    seen = {event["id"]}
    parent_id = event["parent_event_id"]
    while parent_id is not None and parent_id not in seen and len(ancestors) < _MAX_DEPTH:
        seen.add(parent_id)
        try:
            parent = store.ledger_entry(parent_id)
        except ApiError:
            break
        ancestors.insert(0, parent)
        parent_id = parent["parent_event_id"]
    children = store.ledger_by("parent_event_id", event["id"])
    original = event
    while original["retry_of_event_id"] is not None and original["retry_of_event_id"] not in seen:
        seen.add(original["retry_of_event_id"])
        try:
            original = store.ledger_entry(original["retry_of_event_id"])
        except ApiError:
            break
    retries = _retries(store, original)
    everything = [*ancestors, event, *children, original, *retries]
    result: dict[str, Any] = {
        "event": _view(event),
        "ancestors": [_view(row) for row in ancestors],
        "children": [_view(row) for row in children],
        "retryChain": {"originalEvent": _view(original), "retries": [_view(row) for row in retries]},
        "anomalies": _anomalies(everything),
        "summary": {
            "totalEvents": len({row["id"] for row in everything}),
            "depth": len(ancestors),
            "childCount": len(children),
            "retryCount": len(retries),
            "hasFailures": any(row["outcome"] in ("FAILED", "TIMEOUT") for row in everything),
        },
    }
    if fmt == "tree":
        result["tree"] = _tree(store, ancestors[0] if ancestors else event)
    return json_response(result)


def _retries(store: Any, original: Record) -> list[Record]:
    """Every retry descending from `original` (retries of retries included), oldest first."""
    found: list[Record] = []
    frontier, seen = [original["id"]], {original["id"]}
    while frontier and len(found) < _MAX_DEPTH:
        for row in store.ledger_by("retry_of_event_id", frontier.pop(0)):
            if row["id"] not in seen:
                seen.add(row["id"])
                found.append(row)
                frontier.append(row["id"])
    return sorted(found, key=lambda row: (row["created_at"], row["ord"]))


@endpoint()
async def correlation_trace(request: Request, body: Body) -> Response:
    """GET /trace/{correlationId}: every event sharing the correlation id, oldest first."""
    correlation_id = request.path_params["correlationId"]
    rows = services(request).store.ledger_by("correlation_id", correlation_id)
    if not rows:
        raise ApiError(404, "NOT_FOUND", f"No events with correlationId {correlation_id}")
    return json_response(
        {
            "correlationId": correlation_id,
            "events": [_view(row) for row in rows],
            "runIds": sorted({row["run_id"] for row in rows if row["run_id"] is not None}),
            "anomalies": _anomalies(rows),
            "summary": {
                "totalEvents": len(rows),
                "firstEventAt": rows[0]["created_at"],
                "lastEventAt": rows[-1]["created_at"],
                "hasFailures": any(row["outcome"] in ("FAILED", "TIMEOUT") for row in rows),
            },
        }
    )


routes = [
    Route("/events", create, methods=["POST"]),
    Route("/events", list_events, methods=["GET"]),
    Route("/events/{id}", get_event, methods=["GET"]),
    Route("/events/{id}/trace", trace, methods=["GET"]),
    Route("/trace/{correlationId}", correlation_trace, methods=["GET"]),
    Route("/customers/{id}/events", customer_events, methods=["GET"]),
]
