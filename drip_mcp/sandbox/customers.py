"""Routes for customers: create, list, get, and the balance."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import SANDBOX_BUSINESS_ID, Record, from_micros
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services, usdc

__all__ = ["customer_view", "routes"]

_ONCHAIN_ADDRESS = re.compile(r"0x[a-fA-F0-9]{40}")
_CUSTOMER_STATUSES = ("ACTIVE", "LOW_BALANCE", "PAUSED")


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _placeholder_address(customer_id: str) -> str:
    """A deterministic fake address for customers without one (the SDK needs a string)."""
    return "0x" + hashlib.sha256(customer_id.encode()).hexdigest()[:40]


# -- views ------------------------------------------------------------------------------


def customer_view(row: Record) -> dict[str, Any]:
    """A Customer object."""
    return {
        "id": row["id"],
        "businessId": SANDBOX_BUSINESS_ID,
        "externalCustomerId": row["external_customer_id"],
        "onchainAddress": row["onchain_address"],
        "email": row["email"],
        "isInternal": bool(row["is_internal"]),
        "status": row["status"],
        "metadata": _load(row["metadata"]),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _list(items: list[dict[str, Any]]) -> Response:
    return json_response({"data": items, "count": len(items)})


# -- customers --------------------------------------------------------------------------


@endpoint()
async def create_customer(request: Request, body: Body) -> Response:
    """POST /customers."""
    external_id = body.string("externalCustomerId", max_length=255)
    address = body.string("onchainAddress", pattern=_ONCHAIN_ADDRESS)
    email = body.string("email", max_length=255)
    is_internal = body.boolean("isInternal", default=False)
    metadata = body.mapping("metadata")
    if body.data.get("externalCustomerId") is None and body.data.get("onchainAddress") is None:
        body.fail("externalCustomerId", "externalCustomerId or onchainAddress is required")
    body.check()
    row = services(request).store.create_customer(
        external_customer_id=external_id,
        onchain_address=address,
        email=email,
        is_internal=is_internal,
        metadata=metadata,
    )
    return json_response({**customer_view(row), "provisioningStatus": "skipped"}, 201)


@endpoint()
async def list_customers(request: Request, body: Body) -> Response:
    """GET /customers."""
    query = Query(request)
    limit = query.int_param("limit", default=100, minimum=1, maximum=100)
    offset = query.int_param("offset", default=0, minimum=0, maximum=10**9)
    status = query.string("status", choices=_CUSTOMER_STATUSES)
    query.check()
    rows = services(request).store.list_customers(limit=limit, offset=offset, status=status)
    return _list([customer_view(row) for row in rows])


@endpoint()
async def get_customer(request: Request, body: Body) -> Response:
    """GET /customers/{id}."""
    return json_response(customer_view(services(request).store.customer(request.path_params["id"])))


@endpoint()
async def get_balance(request: Request, body: Body) -> Response:
    """GET /customers/{id}/balance."""
    row = services(request).store.customer(request.path_params["id"])
    balance = usdc(from_micros(row["balance_micros"]))
    return json_response(
        {
            "customerId": row["id"],
            "onchainAddress": row["onchain_address"] or _placeholder_address(row["id"]),
            "balanceUsdc": balance,
            "pendingChargesUsdc": usdc(Decimal(0)),
            "availableUsdc": balance,
            "lastSyncedAt": row["updated_at"],
        }
    )


routes = [
    Route("/customers", create_customer, methods=["POST"]),
    Route("/customers", list_customers, methods=["GET"]),
    Route("/customers/{id}", get_customer, methods=["GET"]),
    Route("/customers/{id}/balance", get_balance, methods=["GET"]),
]
