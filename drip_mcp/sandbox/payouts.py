"""Routes for withdrawals and customer portal sessions, as the Node SDK 0.1.2 calls them.

Both are secret-key only: neither is in Drip's OpenAPI, the Node SDK guards
portal sessions locally (not withdrawals), and the newer Python SDK guards
both; the design's key table (reference section 12) reserves both for
secret keys, so a ``pk_`` key gets 403 ``PUBLIC_KEY_NOT_ALLOWED``.

Withdrawals are snake_case, request and response (the Node SDK maps them):
``POST /withdrawals`` ``{amount_usdc (string or number > 0), idempotency_key
(required), bank_description?}`` answers 201 (200 with ``is_duplicate: true``
on a replay of the key) ``{id, status, amount_usdc, fee_usdc,
net_amount_usdc, fiat_currency:"USD", bank_description, created_at,
completed_at}``; 400 ``INSUFFICIENT_BALANCE`` when it exceeds the business's
withdrawable earnings (`drip_mcp.sandbox.store.payouts`). ``GET /withdrawals``
(``status``, ``limit`` ≤100 default 20, ``offset``) answers ``{withdrawals,
total}``; ``GET /withdrawals/fee-estimate?amount_usdc=`` answers
``{amount_usdc, fee_usdc, net_amount_usdc, fee_bps:100, fee_percent:"1.00",
method:"ACH", estimated_arrival:"1-3 business days"}``; ``DELETE
/withdrawals/{id}`` cancels a PENDING one and answers it (409
``WITHDRAWAL_NOT_CANCELLABLE`` otherwise). Webhooks: ``withdrawal.created``,
and ``withdrawal.failed`` with ``reason: "CANCELLED"`` on cancel.

Portal sessions are camelCase: ``POST /portal-sessions`` ``{customerId (id or
external id), expiresInMinutes? (clamped to 5-1440, default 60)}`` answers
201 ``{id, token, customerId, expiresAt, url:"/portal/<token>"}``; ``DELETE
/portal-sessions/{id}`` answers ``{success: true, id, revokedAt}`` (409
``PORTAL_SESSION_REVOKED`` the second time).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import Record, from_micros, to_micros
from drip_mcp.sandbox.store.payouts import WITHDRAWAL_FEE_BPS, withdrawal_fee
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services, usdc

__all__ = ["routes"]

_WITHDRAWAL_STATUSES = (
    "PENDING",
    "ONCHAIN_PENDING",
    "ONCHAIN_CONFIRMED",
    "OFFRAMP_PENDING",
    "OFFRAMP_PROCESSING",
    "COMPLETE",
    "FAILED",
    "CANCELLED",
)


def _withdrawal_view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "amount_usdc": usdc(from_micros(row["amount_micros"])),
        "fee_usdc": usdc(from_micros(row["fee_micros"])),
        "net_amount_usdc": usdc(from_micros(row["amount_micros"] - row["fee_micros"])),
        "fiat_currency": "USD",
        "bank_description": row["bank_description"],
        "idempotency_key": row["idempotency_key"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
    }


def _amount(fields: Body | Query) -> int:
    amount = fields.decimal("amount_usdc")
    if "amount_usdc" not in fields.data:
        fields.fail("amount_usdc", "is required")
    elif amount is not None and to_micros(amount) <= 0:
        fields.fail("amount_usdc", "must be at least 0.000001")
    fields.check()
    assert amount is not None
    return to_micros(amount)


@endpoint(secret_only=True)
async def create_withdrawal(request: Request, body: Body) -> Response:
    """POST /withdrawals."""
    key = body.required_string("idempotency_key", max_length=128)
    description = body.string("bank_description", max_length=255)
    amount = _amount(body)
    row, replay = services(request).store.create_withdrawal(
        amount_micros=amount, idempotency_key=key, bank_description=description
    )
    return json_response({**_withdrawal_view(row), "is_duplicate": replay}, 200 if replay else 201)


@endpoint(secret_only=True)
async def list_withdrawals(request: Request, body: Body) -> Response:
    """GET /withdrawals."""
    query = Query(request)
    status = query.string("status", choices=_WITHDRAWAL_STATUSES)
    limit = query.int_param("limit", default=20, minimum=1, maximum=100)
    offset = query.int_param("offset", default=0, minimum=0, maximum=10**9)
    query.check()
    rows, total = services(request).store.list_withdrawals(status=status, limit=limit, offset=offset)
    return json_response({"withdrawals": [_withdrawal_view(row) for row in rows], "total": total})


@endpoint(secret_only=True)
async def fee_estimate(request: Request, body: Body) -> Response:
    """GET /withdrawals/fee-estimate?amount_usdc=."""
    amount = _amount(Query(request))
    fee = withdrawal_fee(amount)
    return json_response(
        {
            "amount_usdc": usdc(from_micros(amount)),
            "fee_usdc": usdc(from_micros(fee)),
            "net_amount_usdc": usdc(from_micros(amount - fee)),
            "fee_bps": WITHDRAWAL_FEE_BPS,
            "fee_percent": f"{Decimal(WITHDRAWAL_FEE_BPS) / 100:.2f}",
            "method": "ACH",
            "estimated_arrival": "1-3 business days",
        }
    )


@endpoint(secret_only=True)
async def cancel_withdrawal(request: Request, body: Body) -> Response:
    """DELETE /withdrawals/{id}."""
    return json_response(_withdrawal_view(services(request).store.cancel_withdrawal(request.path_params["id"])))


@endpoint(secret_only=True)
async def create_portal_session(request: Request, body: Body) -> Response:
    """POST /portal-sessions."""
    customer_ref = body.required_string("customerId", max_length=255)
    minutes = body.integer("expiresInMinutes", minimum=-(10**9), maximum=10**9)
    body.check()
    ttl_minutes = 60 if minutes is None else min(1440, max(5, minutes))
    row = services(request).store.create_portal_session(customer_ref, ttl_s=ttl_minutes * 60)
    return json_response(
        {
            "id": row["id"],
            "token": row["token"],
            "customerId": row["customer_id"],
            "expiresAt": row["expires_at"],
            "url": f"/portal/{row['token']}",
        },
        201,
    )


@endpoint(secret_only=True)
async def revoke_portal_session(request: Request, body: Body) -> Response:
    """DELETE /portal-sessions/{id}."""
    row = services(request).store.revoke_portal_session(request.path_params["id"])
    return json_response({"success": True, "id": row["id"], "revokedAt": row["revoked_at"]})


routes = [
    Route("/withdrawals", create_withdrawal, methods=["POST"]),
    Route("/withdrawals", list_withdrawals, methods=["GET"]),
    Route("/withdrawals/fee-estimate", fee_estimate, methods=["GET"]),
    Route("/withdrawals/{id}", cancel_withdrawal, methods=["DELETE"]),
    Route("/portal-sessions", create_portal_session, methods=["POST"]),
    Route("/portal-sessions/{id}", revoke_portal_session, methods=["DELETE"]),
]
