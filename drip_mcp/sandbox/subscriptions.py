"""Routes for subscriptions (any key: DESIGN lists subscriptions among what a public key may do; the
Node SDK guards them locally, which is stricter than Drip's own docs).

Lifecycle (see `drip_mcp.sandbox.store.subscriptions` for the time-driven part):

- ``POST /subscriptions`` → ACTIVE with a first period of one ``interval``
  starting now, or TRIALING when ``trialDays`` (1–365) is given:
  ``trialStart`` now, ``trialEnd`` = the current period's end; after it the
  subscription turns ACTIVE and its first paid period starts.
- ``POST /{id}/cancel {immediate: true}`` → CANCELLED now (from ACTIVE,
  TRIALING, PAUSED or PAST_DUE); ``{immediate: false}`` (the default) sets
  ``cancelAtPeriodEnd`` and leaves the status alone (ACTIVE, TRIALING or
  PAST_DUE; asking again is a no-op) until the period ends, when it becomes
  CANCELLED with ``cancelledAt`` = the period end. ``subscription.cancelled``
  fires when the subscription actually becomes CANCELLED.
- ``POST /{id}/pause {resumeDate?}`` → PAUSED (from ACTIVE only) with
  ``pausedAt`` and ``resumesAt`` (``resumeDate``, an ISO-8601 time in the
  future, else 422); at ``resumesAt`` it resumes by itself.
- ``POST /{id}/resume`` → ACTIVE (from PAUSED only) with a new period starting now.
- ``PATCH /{id}`` changes ``name``, ``description``, ``priceUsdc``,
  ``metadata``, ``includedUsage``, ``overageUnitType`` (not once CANCELLED/EXPIRED).
- Any other transition is **409 ``INVALID_SUBSCRIPTION_TRANSITION``** with the
  current ``status`` in the body.
- Webhooks: ``subscription.created``, ``.cancelled``, ``.paused``,
  ``.resumed``, ``.trial_ended``, ``.renewed``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import SANDBOX_BUSINESS_ID, Record
from drip_mcp.sandbox.store.clock import parse_iso
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services, usdc

__all__ = ["routes"]

_INTERVALS = ("DAILY", "WEEKLY", "MONTHLY", "ANNUAL")
_STATUSES = ("ACTIVE", "PAUSED", "CANCELLED", "EXPIRED", "PAST_DUE", "TRIALING")


def _view(sub: Record) -> dict[str, Any]:
    return {
        "id": sub["id"],
        "businessId": SANDBOX_BUSINESS_ID,
        "customerId": sub["customer_id"],
        "name": sub["name"],
        "description": sub["description"],
        "interval": sub["interval"],
        "priceUsdc": usdc(Decimal(sub["price_usdc"])),
        "status": sub["status"],
        "currentPeriodStart": sub["current_period_start"],
        "currentPeriodEnd": sub["current_period_end"],
        "cancelledAt": sub["cancelled_at"],
        "cancelAtPeriodEnd": bool(sub["cancel_at_period_end"]),
        "pausedAt": sub["paused_at"],
        "resumesAt": sub["resumes_at"],
        "trialStart": sub["trial_start"],
        "trialEnd": sub["trial_end"],
        "includedUsage": sub["included_usage"],
        "overageUnitType": sub["overage_unit_type"],
        "metadata": None if sub["metadata"] is None else json.loads(sub["metadata"]),
        "createdAt": sub["created_at"],
        "updatedAt": sub["updated_at"],
    }


@endpoint()
async def create(request: Request, body: Body) -> Response:
    """POST /subscriptions."""
    fields: Record = {
        "customer_id": body.required_string("customerId"),
        "name": body.required_string("name", max_length=255),
        "interval": body.required_string("interval", choices=_INTERVALS),
        "price_usdc": body.decimal("priceUsdc", positive=False),
        "description": body.string("description", max_length=1000),
        "metadata": body.mapping("metadata"),
        "trial_days": body.integer("trialDays", minimum=1, maximum=365),
        "included_usage": body.integer("includedUsage", minimum=0, maximum=2**53),
        "overage_unit_type": body.string("overageUnitType", max_length=100),
    }
    if "priceUsdc" not in body.data:
        body.fail("priceUsdc", "is required")
    elif fields["price_usdc"] is not None and fields["price_usdc"] < 0:
        body.fail("priceUsdc", "must be 0 or more")
    body.check()
    return json_response(_view(services(request).store.create_subscription(fields)), 201)


@endpoint()
async def list_all(request: Request, body: Body) -> Response:
    """GET /subscriptions: ``{data, count}``, newest first."""
    query = Query(request)
    customer_id = query.string("customerId")
    status = query.string("status", choices=_STATUSES)
    limit = query.int_param("limit", default=100, minimum=1, maximum=100)
    query.check()
    rows = services(request).store.list_subscriptions(customer_id=customer_id, status=status, limit=limit)
    return json_response({"data": [_view(row) for row in rows], "count": len(rows)})


@endpoint()
async def get(request: Request, body: Body) -> Response:
    """GET /subscriptions/{id}."""
    return json_response(_view(services(request).store.subscription(request.path_params["id"])))


@endpoint()
async def update(request: Request, body: Body) -> Response:
    """PATCH /subscriptions/{id}."""
    changes: Record = {}
    if "name" in body.data:
        changes["name"] = body.required_string("name", max_length=255)
    if "description" in body.data:
        changes["description"] = body.string("description", max_length=1000)
    if "priceUsdc" in body.data:
        price = body.decimal("priceUsdc", positive=False)
        if price is not None and price < 0:
            body.fail("priceUsdc", "must be 0 or more")
        changes["price_usdc"] = price
    if "metadata" in body.data:
        changes["metadata"] = body.mapping("metadata")
    if "includedUsage" in body.data:
        changes["included_usage"] = body.integer("includedUsage", minimum=0, maximum=2**53)
    if "overageUnitType" in body.data:
        changes["overage_unit_type"] = body.string("overageUnitType", max_length=100)
    body.check()
    return json_response(_view(services(request).store.update_subscription(request.path_params["id"], changes)))


@endpoint()
async def cancel(request: Request, body: Body) -> Response:
    """POST /subscriptions/{id}/cancel."""
    immediate = body.boolean("immediate", False)
    body.check()
    sub = services(request).store.cancel_subscription(request.path_params["id"], immediate=immediate)
    return json_response(_view(sub))


@endpoint()
async def pause(request: Request, body: Body) -> Response:
    """POST /subscriptions/{id}/pause."""
    raw = body.string("resumeDate")
    resumes_at = None if raw is None else parse_iso(raw)
    if raw is not None and resumes_at is None:
        body.fail("resumeDate", "must be an ISO-8601 date-time")
    body.check()
    sub = services(request).store.pause_subscription(request.path_params["id"], resumes_at=resumes_at)
    return json_response(_view(sub))


@endpoint()
async def resume(request: Request, body: Body) -> Response:
    """POST /subscriptions/{id}/resume."""
    return json_response(_view(services(request).store.resume_subscription(request.path_params["id"])))


routes = [
    Route("/subscriptions", create, methods=["POST"]),
    Route("/subscriptions", list_all, methods=["GET"]),
    Route("/subscriptions/{id}", get, methods=["GET"]),
    Route("/subscriptions/{id}", update, methods=["PATCH"]),
    Route("/subscriptions/{id}/cancel", cancel, methods=["POST"]),
    Route("/subscriptions/{id}/pause", pause, methods=["POST"]),
    Route("/subscriptions/{id}/resume", resume, methods=["POST"]),
]
