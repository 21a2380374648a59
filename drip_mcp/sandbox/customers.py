"""Routes for customers: create, list, get, update, the balance, provisioning and balance sync.

``PATCH /customers/{id}`` (any key, like create; the body is undocumented, so
it takes the create fields): ``externalCustomerId``, ``onchainAddress``,
``email``, ``metadata`` (replaced whole; null clears), ``status``
(``ACTIVE``/``LOW_BALANCE``/``PAUSED``), ``isInternal``; 409
``DUPLICATE_CUSTOMER`` with ``existingCustomerId`` when another customer has
the external id or address. Answers the Customer. Any other field is a 422, except the
``idempotencyKey`` every client write carries (accepted and unused).

``POST /customers/{id}/provision`` (secret key) answers the snake_case
provisioning result of the OpenAPI (``smart_account_address``,
``already_deployed``, ``deploy_tx_hash``, ``fund_tx_hash``,
``billing_deposit_tx_hash``, ``billing_balance_usdc``, ``funding_required``)
and, in addition, the Customer's camelCase fields, because the Python SDK
0.1.2 parses this response as a Customer. The sandbox's smart account is the
customer's deterministic placeholder address (the one the balance shows); a
customer that already has an address is ``already_deployed`` with null hashes.
``deposit_amount_usdc`` is accepted and ignored (nothing is funded).

``POST /customers/{id}/sync-balance`` (secret key) answers the OpenAPI shape
``{customerId, previousBalance, newBalance, changed, blockNumber, syncedAt}``
plus ``balance`` (the Node SDK's type); the sandbox ledger is the chain, so
``changed`` is always false.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import SANDBOX_BUSINESS_ID, Record, from_micros, iso_now
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


_PATCHABLE = {
    "externalCustomerId": "external_customer_id",
    "onchainAddress": "onchain_address",
    "email": "email",
    "metadata": "metadata",
    "status": "status",
    "isInternal": "is_internal",
}


@endpoint()
async def update_customer(request: Request, body: Body) -> Response:
    """PATCH /customers/{id}."""
    values = {
        "externalCustomerId": body.string("externalCustomerId", max_length=255),
        "onchainAddress": body.string("onchainAddress", pattern=_ONCHAIN_ADDRESS),
        "email": body.string("email", max_length=255),
        "metadata": body.mapping("metadata"),
        "status": body.string("status", choices=_CUSTOMER_STATUSES),
        "isInternal": body.boolean("isInternal", default=False),
    }
    # Every client write carries idempotencyKey in its body (a PATCH is idempotent anyway): accepted, unused.
    unknown = sorted(set(body.data) - set(_PATCHABLE) - {"idempotencyKey"})
    for name in unknown:
        body.fail(name, "is not a field that can be updated")
    for name in ("status", "isInternal"):
        if name in body.data and body.data[name] is None:
            body.fail(name, "must not be null")
    body.check()
    changes = {_PATCHABLE[name]: values[name] for name in _PATCHABLE if name in body.data}
    row = services(request).store.update_customer(request.path_params["id"], changes)
    return json_response(customer_view(row))


@endpoint(secret_only=True)
async def provision_customer(request: Request, body: Body) -> Response:
    """POST /customers/{id}/provision."""
    body.decimal("deposit_amount_usdc")
    body.check()
    customer_id = request.path_params["id"]
    row, deployed = services(request).store.provision_customer(customer_id, _placeholder_address(customer_id))
    return json_response(
        {
            **customer_view(row),
            "smart_account_address": row["onchain_address"],
            "already_deployed": deployed,
            "deploy_tx_hash": None if deployed else "0x" + secrets.token_hex(32),
            "fund_tx_hash": None,
            "billing_deposit_tx_hash": None,
            "billing_balance_usdc": usdc(from_micros(row["balance_micros"])),
            "funding_required": False,
        }
    )


@endpoint(secret_only=True)
async def sync_balance(request: Request, body: Body) -> Response:
    """POST /customers/{id}/sync-balance."""
    row = services(request).store.sync_balance(request.path_params["id"])
    balance = usdc(from_micros(row["balance_micros"]))
    return json_response(
        {
            "customerId": row["id"],
            "previousBalance": balance,
            "newBalance": balance,
            "balance": balance,
            "changed": False,
            "blockNumber": str(int(time.time())),
            "syncedAt": iso_now(),
        }
    )


routes = [
    Route("/customers", create_customer, methods=["POST"]),
    Route("/customers", list_customers, methods=["GET"]),
    Route("/customers/{id}", get_customer, methods=["GET"]),
    Route("/customers/{id}/balance", get_balance, methods=["GET"]),
    Route("/customers/{id}", update_customer, methods=["PATCH"]),
    Route("/customers/{id}/provision", provision_customer, methods=["POST"]),
    Route("/customers/{id}/sync-balance", sync_balance, methods=["POST"]),
]
