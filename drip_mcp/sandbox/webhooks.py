"""Routes for webhook endpoints and their deliveries (secret keys only).

**Loopback-only by default.** A webhook ``url`` (on create and on PATCH) must
point at a loopback host (``localhost``, 127.0.0.0/8, ``::1``; ``http`` or
``https``), so a sandbox never posts events to the internet. Other hosts are
refused with **422 ``WEBHOOK_URL_NOT_ALLOWED``** unless the sandbox allows
them (`SandboxConfig.webhook_allowed_hosts`: names, ``*.suffix`` patterns or
``*``; ``drip-mcp sandbox --allow-webhook-host HOST`` / ``--allow-any-webhook-host``),
and then only over ``https://``. A malformed URL is a 422 ``VALIDATION_ERROR``.

Secrets are ``whsec_`` plus 40 random characters, shown in full only by
create and rotate-secret. ``filters`` (``{usageTypes?, customerIds?,
severities?}``) are stored, returned, and applied when events are enqueued
(`drip_mcp.sandbox.store.webhooks.passes_filters`); PATCH ``filters: null``
removes them. ``GET /webhooks/events`` lists the event types the sandbox
emits. Deliveries: ``GET /webhooks/{id}/deliveries`` (``limit`` 1–100,
default 50, newest first, ``{data, count}``), ``GET …/deliveries/{deliveryId}``
(adds the sent ``payload``), and ``POST …/deliveries/{deliveryId}/retry``,
which sends a DELIVERED or FAILED delivery once more right away and answers
the delivery after that attempt (409 ``DELIVERY_IN_PROGRESS`` while it is
PENDING or SENDING). Delivery itself is described in `drip_mcp.sandbox.delivery`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.hosts import is_loopback
from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import Record
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services

__all__ = ["WEBHOOK_EVENTS", "host_allowed", "is_allowed_webhook_url", "new_webhook_secret", "routes"]

WEBHOOK_EVENTS: dict[str, str] = {
    "charge.succeeded": "A billable usage charge settled",
    "charge.failed": "A charge could not be made (e.g. insufficient balance)",
    "usage.recorded": "Usage was recorded (billable or internal)",
    "customer.balance.low": "A customer's balance fell below the low-balance threshold",
    "customer.entitlement.assigned": "An entitlement plan was assigned to a customer",
    "entitlement_plan.created": "An entitlement plan was created",
    "entitlement_plan.updated": "An entitlement plan or one of its rules changed",
    "entitlement_plan.deleted": "An entitlement plan was deactivated",
    "subscription.created": "A subscription was created",
    "subscription.renewed": "A subscription started a new period",
    "subscription.cancelled": "A subscription became CANCELLED",
    "subscription.paused": "A subscription was paused",
    "subscription.resumed": "A paused subscription resumed",
    "subscription.trial_ended": "A subscription's trial ended and its first paid period started",
}


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret."""
    return "whsec_" + secrets.token_urlsafe(30)


def is_allowed_webhook_url(url: str) -> bool:
    """True for an https URL with a host, or an http URL whose host is loopback (the URL's shape only)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))


def host_allowed(url: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether the (well-formed) `url`'s host is loopback or matches `allowed_hosts` (names, ``*.suffix``, ``*``)."""
    host = (urlsplit(url).hostname or "").lower()
    if is_loopback(host):
        return True
    for pattern in (entry.strip().lower() for entry in allowed_hosts):
        if pattern == "*" or pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _check_url(request: Request, body: Body, url: str | None) -> None:
    if not url:
        return
    if not is_allowed_webhook_url(url):
        body.fail("url", "must be an https:// URL (http:// is allowed only for localhost and 127.0.0.1)")
        return
    allowed = services(request).config.webhook_allowed_hosts
    if not host_allowed(url, allowed):
        body.check()
        raise ApiError(
            422,
            "WEBHOOK_URL_NOT_ALLOWED",
            f"The sandbox delivers webhooks to loopback addresses only; {urlsplit(url).hostname!r} is not allowed."
            " Use http://127.0.0.1:<port>/..., or start the sandbox with --allow-webhook-host HOST"
            " (or --allow-any-webhook-host).",
            details=[{"path": "url", "message": "host is not loopback and not in the sandbox's allowed hosts"}],
        )


def _filters(body: Body) -> Record | None:
    filters = body.mapping("filters")
    if filters is None:
        return None
    fields = Body(filters, "filters.", body.errors)
    for name in filters:
        if name not in ("usageTypes", "customerIds", "severities"):
            fields.fail(name, "is not a known filter (usageTypes, customerIds, severities)")
    fields.strings("usageTypes")
    fields.strings("customerIds")
    fields.strings("severities")
    for severity in filters.get("severities") or []:
        if severity not in ("low", "medium", "high", "critical"):
            fields.fail("severities", "must contain only low, medium, high or critical")
    return filters


def _webhook_view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "description": row["description"],
        "filters": None if row["filters"] is None else json.loads(row["filters"]),
        "isActive": bool(row["is_active"]),
        "healthStatus": "HEALTHY",
        "consecutiveFailures": 0,
        "lastHealthChange": None,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "stats": {
            "total": row["total"],
            "delivered": row["delivered"],
            "failed": row["failed"],
            "pending": row["pending"],
        },
    }


@endpoint(secret_only=True)
async def create_webhook(request: Request, body: Body) -> Response:
    """POST /webhooks."""
    url = body.required_string("url", max_length=2048)
    events = body.strings("events")
    if events is None and "events" not in body.data:
        body.fail("events", "is required")
    description = body.string("description", max_length=500)
    filters = _filters(body)
    _check_url(request, body, url)
    body.check()
    assert events is not None
    secret = new_webhook_secret()
    row = services(request).store.create_webhook(
        url=url, events=events, description=description, secret=secret, filters=filters
    )
    return json_response(
        {
            **_webhook_view(row),
            "secret": secret,
            "message": "Webhook created. Store the secret now: it is shown once.",
        },
        201,
    )


@endpoint(secret_only=True)
async def list_webhooks(request: Request, body: Body) -> Response:
    """GET /webhooks."""
    rows = services(request).store.list_webhooks()
    return json_response({"data": [_webhook_view(row) for row in rows], "count": len(rows)})


@endpoint(secret_only=True)
async def get_webhook(request: Request, body: Body) -> Response:
    """GET /webhooks/{id}."""
    return json_response(_webhook_view(services(request).store.webhook(request.path_params["id"])))


@endpoint(secret_only=True)
async def update_webhook(request: Request, body: Body) -> Response:
    """PATCH /webhooks/{id}: change url, events, description, isActive or filters (null removes them)."""
    changes: Record = {}
    if "url" in body.data:
        changes["url"] = body.required_string("url", max_length=2048)
        _check_url(request, body, changes["url"])
    if "events" in body.data:
        changes["events"] = body.strings("events")
    if "description" in body.data:
        changes["description"] = body.string("description", max_length=500)
    if "isActive" in body.data:
        changes["is_active"] = body.boolean("isActive", True)
    if "filters" in body.data:
        changes["filters"] = _filters(body)
    body.check()
    return json_response(_webhook_view(services(request).store.update_webhook(request.path_params["id"], changes)))


@endpoint(secret_only=True)
async def list_event_types(request: Request, body: Body) -> Response:
    """GET /webhooks/events: the event types a webhook can subscribe to (``*`` = all)."""
    return json_response({"events": list(WEBHOOK_EVENTS), "description": WEBHOOK_EVENTS})


def _delivery_view(row: Record, *, with_payload: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "webhookId": row["webhook_id"],
        "eventType": row["event_type"],
        "eventId": row["event_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "responseCode": row["response_code"],
        "errorMessage": row["error_message"],
        "createdAt": row["created_at"],
        "lastAttemptAt": row["last_attempt_at"],
    }
    if with_payload:
        view["payload"] = json.loads(row["payload"])
    return view


@endpoint(secret_only=True)
async def list_deliveries(request: Request, body: Body) -> Response:
    """GET /webhooks/{id}/deliveries."""
    query = Query(request)
    limit = query.int_param("limit", default=50, minimum=1, maximum=100)
    query.check()
    rows = services(request).store.webhook_deliveries(request.path_params["id"], limit=limit)
    return json_response({"data": [_delivery_view(row) for row in rows], "count": len(rows)})


@endpoint(secret_only=True)
async def get_delivery(request: Request, body: Body) -> Response:
    """GET /webhooks/{id}/deliveries/{deliveryId}."""
    row = services(request).store.webhook_delivery(request.path_params["id"], request.path_params["deliveryId"])
    return json_response(_delivery_view(row, with_payload=True))


@endpoint(secret_only=True)
async def retry_delivery(request: Request, body: Body) -> Response:
    """POST /webhooks/{id}/deliveries/{deliveryId}/retry: send it once more now."""
    row = await services(request).deliveries.resend(request.path_params["id"], request.path_params["deliveryId"])
    return json_response(_delivery_view(row))


@endpoint(secret_only=True)
async def delete_webhook(request: Request, body: Body) -> Response:
    """DELETE /webhooks/{id}: 204."""
    services(request).store.delete_webhook(request.path_params["id"])
    return Response(status_code=204)


@endpoint(secret_only=True)
async def rotate_secret(request: Request, body: Body) -> Response:
    """POST /webhooks/{id}/rotate-secret."""
    secret = new_webhook_secret()
    services(request).store.rotate_webhook_secret(request.path_params["id"], secret)
    return json_response({"secret": secret, "message": "Secret rotated. Store the new secret now."})


@endpoint(secret_only=True)
async def test_webhook(request: Request, body: Body) -> Response:
    """POST /webhooks/{id}/test: send a ``webhook.test`` event now and report the outcome."""
    delivery = await services(request).deliveries.send_test(request.path_params["id"])
    delivered = delivery["status"] == "DELIVERED"
    return json_response(
        {
            "message": "Test event delivered" if delivered else f"Test event failed: {delivery['error_message']}",
            "deliveryId": delivery["id"],
            "status": delivery["status"],
            "responseCode": delivery["response_code"],
        }
    )


routes = [
    Route("/webhooks", create_webhook, methods=["POST"]),
    Route("/webhooks", list_webhooks, methods=["GET"]),
    Route("/webhooks/events", list_event_types, methods=["GET"]),
    Route("/webhooks/{id}", get_webhook, methods=["GET"]),
    Route("/webhooks/{id}", update_webhook, methods=["PATCH"]),
    Route("/webhooks/{id}/deliveries", list_deliveries, methods=["GET"]),
    Route("/webhooks/{id}/deliveries/{deliveryId}", get_delivery, methods=["GET"]),
    Route("/webhooks/{id}/deliveries/{deliveryId}/retry", retry_delivery, methods=["POST"]),
    Route("/webhooks/{id}", delete_webhook, methods=["DELETE"]),
    Route("/webhooks/{id}/test", test_webhook, methods=["POST"]),
    Route("/webhooks/{id}/rotate-secret", rotate_secret, methods=["POST"]),
]
