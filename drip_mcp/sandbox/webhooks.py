"""Routes for webhook endpoints (secret keys only).

A webhook ``url`` must be ``https://``; plain ``http://`` is accepted only for
loopback hosts (``localhost``, 127.0.0.0/8, ``::1``), so a local receiver can
be tested. Secrets are ``whsec_`` plus 40 random characters, shown in full
only by create and rotate-secret. Deliveries are described in
`drip_mcp.sandbox.delivery`.
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
from drip_mcp.sandbox.store import Record
from drip_mcp.sandbox.web import Body, endpoint, json_response, services

__all__ = ["is_allowed_webhook_url", "new_webhook_secret", "routes"]


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret."""
    return "whsec_" + secrets.token_urlsafe(30)


def is_allowed_webhook_url(url: str) -> bool:
    """True for an https URL with a host, or an http URL whose host is loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))


def _webhook_view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "description": row["description"],
        "filters": None,
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
    if url and not is_allowed_webhook_url(url):
        body.fail("url", "must be an https:// URL (http:// is allowed only for localhost and 127.0.0.1)")
    events = body.strings("events")
    if events is None and "events" not in body.data:
        body.fail("events", "is required")
    description = body.string("description", max_length=500)
    body.mapping("filters")
    body.check()
    assert events is not None
    secret = new_webhook_secret()
    row = services(request).store.create_webhook(url=url, events=events, description=description, secret=secret)
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
    Route("/webhooks/{id}", get_webhook, methods=["GET"]),
    Route("/webhooks/{id}", delete_webhook, methods=["DELETE"]),
    Route("/webhooks/{id}/test", test_webhook, methods=["POST"]),
    Route("/webhooks/{id}/rotate-secret", rotate_secret, methods=["POST"]),
]
