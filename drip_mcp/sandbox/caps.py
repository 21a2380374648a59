"""Routes for per-customer spending caps (enforcement: `drip_mcp.sandbox.store.caps`).

``PUT /customers/{id}/spending-cap`` ``{capType, limitValue (USDC number > 0),
autoBlock?=true}`` creates the customer's cap of that type or updates the
active one (200 either way, the cap). ``GET /customers/{id}/spending-caps``
answers ``{caps}`` (active caps, current period). ``DELETE
/customers/{id}/spending-caps/{capId}`` deactivates the cap and answers
``{success: true}``. A cap is ``{id, customerId, capType, limitValue,
currentUsage, periodStart, isActive, autoBlock, lastAlertLevel, createdAt,
updatedAt}`` with USDC amounts as 6-decimal strings and ``lastAlertLevel`` one
of ``"50"``, ``"80"``, ``"95"``, ``"100"`` or null.

Any key may call them: the design's key table lists spending caps for public
keys (Drip's docs do), although the Node SDK guards them locally. A charge an
auto-blocking cap refuses is 403 ``SPENDING_CAP_EXCEEDED`` with ``capId``,
``capType``, ``limitValue``, ``currentUsage``, ``attemptedAmountUsdc`` and
``periodStart`` in the body.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.store import Record, from_micros, to_micros
from drip_mcp.sandbox.store.caps import CAP_TYPES
from drip_mcp.sandbox.web import Body, endpoint, json_response, services, usdc

__all__ = ["cap_view", "routes"]


def cap_view(cap: Record) -> dict[str, Any]:
    """A CustomerSpendingCap object."""
    single = cap["cap_type"] == "SINGLE_CHARGE_LIMIT"
    return {
        "id": cap["id"],
        "customerId": cap["customer_id"],
        "capType": cap["cap_type"],
        "limitValue": usdc(from_micros(cap["limit_micros"])),
        "currentUsage": usdc(from_micros(0 if single else cap["current_usage_micros"])),
        "periodStart": cap["period_start"],
        "isActive": bool(cap["is_active"]),
        "autoBlock": bool(cap["auto_block"]),
        "lastAlertLevel": cap["last_alert_level"],
        "createdAt": cap["created_at"],
        "updatedAt": cap["updated_at"],
    }


@endpoint()
async def set_cap(request: Request, body: Body) -> Response:
    """PUT /customers/{id}/spending-cap."""
    cap_type = body.required_string("capType", choices=CAP_TYPES)
    limit = body.decimal("limitValue")
    if "limitValue" not in body.data:
        body.fail("limitValue", "is required")
    auto_block = body.boolean("autoBlock", default=True)
    body.check()
    assert limit is not None
    if to_micros(limit) <= 0:
        body.fail("limitValue", "must be at least 0.000001")
        body.check()
    cap = services(request).store.set_spending_cap(
        request.path_params["id"], cap_type=cap_type, limit_micros=to_micros(limit), auto_block=auto_block
    )
    return json_response(cap_view(cap))


@endpoint()
async def list_caps(request: Request, body: Body) -> Response:
    """GET /customers/{id}/spending-caps."""
    caps = services(request).store.spending_caps(request.path_params["id"])
    return json_response({"caps": [cap_view(cap) for cap in caps]})


@endpoint()
async def remove_cap(request: Request, body: Body) -> Response:
    """DELETE /customers/{id}/spending-caps/{capId}."""
    services(request).store.remove_spending_cap(request.path_params["id"], request.path_params["capId"])
    return json_response({"success": True})


routes = [
    Route("/customers/{id}/spending-cap", set_cap, methods=["PUT"]),
    Route("/customers/{id}/spending-caps", list_caps, methods=["GET"]),
    Route("/customers/{id}/spending-caps/{capId}", remove_cap, methods=["DELETE"]),
]
