"""Routes for per-customer pricing contracts (secret keys only; ADMIN in Drip's OpenAPI).

``POST /contracts`` ``{customerId, name, startDate, endDate?, minimumUsdc?,
maximumUsdc?, discountPct?, prepaidAmountUsdc?, prepaidRollover?,
includedUnits?, metadata?}`` answers 201 with the Contract; ``GET /contracts``
(``customerId``, ``status`` filters) answers ``{contracts}``; ``GET``,
``PATCH`` (same fields, all optional, plus ``status``) and ``DELETE``
(cancels; answers the contract with ``status: "CANCELLED"``) on
``/contracts/{id}``. ``POST /contracts/{id}/overrides`` ``{unitType,
unitPriceUsd}`` (the price as a string or number) answers 201 ``{contractId,
unitType, unitPriceUsdc, unitPriceUsd}`` (the SDKs read ``unitPriceUsdc``);
``DELETE /contracts/{id}/overrides/{unitType}`` answers ``{success: true}``.

A Contract is ``{id, customerId, name, status, startDate, endDate,
minimumUsdc, maximumUsdc, discountPct, prepaidAmountUsdc, prepaidBalanceUsdc,
prepaidRollover, includedUnits, metadata, overrides:[{unitType,
unitPriceUsdc}], createdAt, updatedAt}``; dates are normalised to ISO-8601
UTC. How overrides change charges: `drip_mcp.sandbox.store.contracts`.
Webhooks: ``contract.created``, ``contract.updated``, ``contract.cancelled``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.billing import _normalise_iso
from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import Record
from drip_mcp.sandbox.store.contracts import CONTRACT_STATUSES
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, services

__all__ = ["routes"]

_MONEY_TERMS = ("minimumUsdc", "maximumUsdc", "prepaidAmountUsdc")


def _contract_view(row: Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "customerId": row["customer_id"],
        "name": row["name"],
        "status": row["status"],
        "startDate": row["start_date"],
        "endDate": row["end_date"],
        "minimumUsdc": row["minimum_usdc"],
        "maximumUsdc": row["maximum_usdc"],
        "discountPct": row["discount_pct"],
        "prepaidAmountUsdc": row["prepaid_amount_usdc"],
        "prepaidBalanceUsdc": row["prepaid_amount_usdc"],
        "prepaidRollover": bool(row["prepaid_rollover"]),
        "includedUnits": None if row["included_units"] is None else json.loads(row["included_units"]),
        "metadata": None if row["metadata"] is None else json.loads(row["metadata"]),
        "overrides": [{"unitType": o["unit_type"], "unitPriceUsdc": o["unit_price"]} for o in row["overrides"]],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _terms(body: Body, *, creating: bool) -> dict[str, Any]:
    """The contract fields present in `body`, validated (name and startDate required when `creating`)."""
    terms: dict[str, Any] = {}
    if creating or "name" in body.data:
        terms["name"] = body.required_string("name", max_length=255)
    for field in ("startDate", "endDate"):
        if (creating and field == "startDate") or body.data.get(field) is not None:
            value = body.required_string(field)
            try:
                terms[field] = _normalise_iso(value) if value else value
            except ApiError:  # the helper's own 422 becomes a field-level problem
                body.fail(field, "must be an ISO-8601 date or datetime")
    for field in _MONEY_TERMS:
        if body.data.get(field) is not None:
            amount = body.decimal(field, positive=False)
            terms[field] = None if amount is None else str(amount)
    if body.data.get("discountPct") is not None:
        pct = body.decimal("discountPct", positive=False)
        if pct is not None and not 0 <= pct <= 100:
            body.fail("discountPct", "must be between 0 and 100")
        terms["discountPct"] = pct
    if "prepaidRollover" in body.data:
        terms["prepaidRollover"] = body.boolean("prepaidRollover", default=False)
    for field in ("includedUnits", "metadata"):
        if field in body.data:
            terms[field] = body.mapping(field)
    if not creating and "status" in body.data:
        terms["status"] = body.required_string("status", choices=CONTRACT_STATUSES)
    return terms


@endpoint(secret_only=True)
async def create_contract(request: Request, body: Body) -> Response:
    """POST /contracts."""
    customer_id = body.required_string("customerId", max_length=255)
    terms = _terms(body, creating=True)
    body.check()
    return json_response(_contract_view(services(request).store.create_contract(customer_id, terms)), 201)


@endpoint(secret_only=True)
async def list_contracts(request: Request, body: Body) -> Response:
    """GET /contracts."""
    query = Query(request)
    customer_id = query.string("customerId")
    status = query.string("status", choices=CONTRACT_STATUSES)
    query.check()
    rows = services(request).store.list_contracts(customer_id=customer_id, status=status)
    return json_response({"contracts": [_contract_view(row) for row in rows]})


@endpoint(secret_only=True)
async def get_contract(request: Request, body: Body) -> Response:
    """GET /contracts/{id}."""
    return json_response(_contract_view(services(request).store.contract(request.path_params["id"])))


@endpoint(secret_only=True)
async def update_contract(request: Request, body: Body) -> Response:
    """PATCH /contracts/{id}."""
    terms = _terms(body, creating=False)
    body.check()
    row = services(request).store.update_contract(request.path_params["id"], terms)
    return json_response(_contract_view(row))


@endpoint(secret_only=True)
async def cancel_contract(request: Request, body: Body) -> Response:
    """DELETE /contracts/{id}: cancel."""
    return json_response(_contract_view(services(request).store.cancel_contract(request.path_params["id"])))


@endpoint(secret_only=True)
async def add_override(request: Request, body: Body) -> Response:
    """POST /contracts/{id}/overrides."""
    unit_type = body.required_string("unitType", max_length=100)
    price = body.decimal("unitPriceUsd", positive=False)
    if "unitPriceUsd" not in body.data:
        body.fail("unitPriceUsd", "is required")
    elif price is not None and price < 0:
        body.fail("unitPriceUsd", "must be 0 or more")
    body.check()
    assert price is not None
    row = services(request).store.set_contract_override(request.path_params["id"], unit_type, price)
    return json_response(
        {
            "contractId": row["contract_id"],
            "unitType": row["unit_type"],
            "unitPriceUsdc": row["unit_price"],
            "unitPriceUsd": row["unit_price"],
        },
        201,
    )


@endpoint(secret_only=True)
async def remove_override(request: Request, body: Body) -> Response:
    """DELETE /contracts/{id}/overrides/{unitType}."""
    services(request).store.remove_contract_override(request.path_params["id"], request.path_params["unitType"])
    return json_response({"success": True})


routes = [
    Route("/contracts", create_contract, methods=["POST"]),
    Route("/contracts", list_contracts, methods=["GET"]),
    Route("/contracts/{id}", get_contract, methods=["GET"]),
    Route("/contracts/{id}", update_contract, methods=["PATCH"]),
    Route("/contracts/{id}", cancel_contract, methods=["DELETE"]),
    Route("/contracts/{id}/overrides", add_override, methods=["POST"]),
    Route("/contracts/{id}/overrides/{unitType}", remove_override, methods=["DELETE"]),
]
