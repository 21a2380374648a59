"""Routes for one pricing plan: get, update, soft delete, versions, lookup by unit type.

``GET /pricing-plans/{id}`` and ``GET /pricing-plans/by-type/{unitType}`` (404
``NOT_FOUND`` when no active plan has the unit type) answer the PricingPlan
object of ``GET /pricing-plans`` plus ``version``. ``PATCH`` (secret key)
takes ``name?``, ``unitPriceUsd?`` (number > 0; a different price makes a new
version), ``isActive?``; activating a second plan for a unit type is 409
``DUPLICATE_PRICING_PLAN`` with ``existingPlanId``. ``DELETE`` (secret key) is
soft: it answers the plan with ``isActive: false``. ``GET
/pricing-plans/{id}/versions`` answers ``{data:[{id, pricingPlanId, version,
unitPriceUsd, effectiveFrom, effectiveTo}], count}`` oldest first (the list
envelope of the other plan routes; the schema is not published). Charges
already made keep their amounts.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.billing import _plan_view
from drip_mcp.sandbox.store import Record
from drip_mcp.sandbox.web import Body, endpoint, json_response, services

__all__ = ["routes"]


def _view(plan: Record) -> dict[str, Any]:
    return {**_plan_view(plan), "version": plan["version"]}


@endpoint()
async def get_plan(request: Request, body: Body) -> Response:
    """GET /pricing-plans/{id}."""
    return json_response(_view(services(request).store.pricing_plan(request.path_params["id"])))


@endpoint()
async def plan_by_type(request: Request, body: Body) -> Response:
    """GET /pricing-plans/by-type/{unitType}."""
    return json_response(_view(services(request).store.active_plan_for(request.path_params["unitType"])))


@endpoint(secret_only=True)
async def update_plan(request: Request, body: Body) -> Response:
    """PATCH /pricing-plans/{id}."""
    name = body.string("name", max_length=255)
    price = body.decimal("unitPriceUsd")
    is_active = body.boolean("isActive", default=True) if "isActive" in body.data else None
    body.string("pricingModel", choices=("FLAT",))
    body.check()
    plan = services(request).store.update_pricing_plan(
        request.path_params["id"], name=name, unit_price=price, is_active=is_active
    )
    return json_response(_view(plan))


@endpoint(secret_only=True)
async def delete_plan(request: Request, body: Body) -> Response:
    """DELETE /pricing-plans/{id} (soft)."""
    return json_response(_view(services(request).store.delete_pricing_plan(request.path_params["id"])))


@endpoint()
async def plan_versions(request: Request, body: Body) -> Response:
    """GET /pricing-plans/{id}/versions."""
    versions = services(request).store.plan_versions(request.path_params["id"])
    data = [
        {
            "id": row["id"],
            "pricingPlanId": row["plan_id"],
            "version": row["version"],
            "unitPriceUsd": row["unit_price"],
            "effectiveFrom": row["effective_from"],
            "effectiveTo": row["effective_to"],
            "createdAt": row["created_at"],
        }
        for row in versions
    ]
    return json_response({"data": data, "count": len(data)})


routes = [
    Route("/pricing-plans/by-type/{unitType}", plan_by_type, methods=["GET"]),
    Route("/pricing-plans/{id}", get_plan, methods=["GET"]),
    Route("/pricing-plans/{id}", update_plan, methods=["PATCH"]),
    Route("/pricing-plans/{id}", delete_plan, methods=["DELETE"]),
    Route("/pricing-plans/{id}/versions", plan_versions, methods=["GET"]),
]
