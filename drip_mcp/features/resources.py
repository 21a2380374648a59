"""Read-only resources: Drip objects by URI, listed only when the key may read them.

==============================  =====================  =====
URI                             client call            key
==============================  =====================  =====
``drip://customers/{customer_id}``  ``get_customer``       pk_
``drip://runs/{run_id}/timeline``   ``get_run_timeline``   pk_
``drip://charges/{charge_id}``      ``get_charge``         pk_
``drip://webhooks/{webhook_id}``    ``get_webhook``        sk_
``drip://meters``                   ``list_pricing_plans`` pk_
==============================  =====================  =====

The key column is not written here: it is the endpoint's scope in `drip_mcp.api.endpoints`. A
middleware drops what the caller's key may not read from ``resources/list`` and
``resources/templates/list`` (the key may differ per request over HTTP); a read is refused anyway by
the client's scope guard before any request leaves. A Drip error becomes a JSON-RPC error whose
``data.error`` is the same structured error a tool would return.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import BaseModel

from drip_mcp.api.client import DripClient, Page
from drip_mcp.api.models import PricingPlan
from drip_mcp.errors import DripError

__all__ = ["ENDPOINT_BY_URI", "RESOURCE_NOT_FOUND", "ResourceScope", "register"]

ClientResolver = Callable[[], DripClient]
M = TypeVar("M", bound=BaseModel)

RESOURCE_NOT_FOUND: Final = -32002
"""The spec's "resource not found" JSON-RPC code."""

ENDPOINT_BY_URI: Final[dict[str, str]] = {
    "drip://customers/{customer_id}": "get_customer",
    "drip://runs/{run_id}/timeline": "get_run_timeline",
    "drip://charges/{charge_id}": "get_charge",
    "drip://webhooks/{webhook_id}": "get_webhook",
    "drip://meters": "list_pricing_plans",
}
"""Every Drip-backed resource and the endpoint its read calls (which decides the key it needs)."""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _read(uri: str, call: Awaitable[M], shape: Callable[[M], Any] | None = None) -> str:
    """Await `call`; JSON of `shape(model)` (default: the model's JSON dump), or a JSON-RPC error."""
    try:
        model = await call
    except DripError as exc:
        code = RESOURCE_NOT_FOUND if exc.status == 404 else INVALID_PARAMS if exc.status else INTERNAL_ERROR
        if exc.code == "PUBLIC_KEY_NOT_ALLOWED":
            code = INVALID_PARAMS
        raise MCPError(code=code, message=str(exc), data={"uri": uri, "error": exc.to_dict()}) from None
    return _json(shape(model) if shape is not None else model.model_dump(mode="json"))


def _meters(page: Page[PricingPlan]) -> dict[str, Any]:
    meters = [
        {
            "meter": plan.unit_type,
            "unit_price_usd": str(plan.unit_price_usd),
            "pricing_model": plan.pricing_model,
            "plan": plan.name,
            "plan_id": plan.id,
        }
        for plan in page.data
        if plan.is_active
    ]
    return {"meters": meters, "count": len(meters)}


class ResourceScope:
    """Middleware: hide the resources and templates the caller's key may not read."""

    def __init__(self, resolve_client: ClientResolver) -> None:
        self._resolve_client = resolve_client

    def _allowed(self, uri: Any) -> bool:
        endpoint = ENDPOINT_BY_URI.get(uri) if isinstance(uri, str) else None
        return endpoint is None or self._resolve_client().allows(endpoint)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if isinstance(result, dict):
            if ctx.method == "resources/list" and isinstance(result.get("resources"), list):
                result["resources"] = [r for r in result["resources"] if self._allowed(r.get("uri"))]
            elif ctx.method == "resources/templates/list" and isinstance(result.get("resourceTemplates"), list):
                templates = result["resourceTemplates"]
                result["resourceTemplates"] = [t for t in templates if self._allowed(t.get("uriTemplate"))]
        return result


def register(server: MCPServer[Any], resolve_client: ClientResolver) -> None:
    """Add the Drip resources and templates to `server`, and the middleware that scopes their lists."""

    def resource(uri: str, name: str, title: str, description: str) -> Callable[[Any], Any]:
        assert uri in ENDPOINT_BY_URI
        return server.resource(uri, name=name, title=title, description=description, mime_type="application/json")

    @resource("drip://customers/{customer_id}", "customer", "Customer", "A Drip customer: ids, status, metadata.")
    async def customer(customer_id: str) -> str:
        uri = f"drip://customers/{customer_id}"
        return await _read(uri, resolve_client().get_customer(customer_id))

    @resource(
        "drip://runs/{run_id}/timeline",
        "run_timeline",
        "Run timeline",
        "An agent run's events in order, with its status and summary (first page).",
    )
    async def run_timeline(run_id: str) -> str:
        return await _read(f"drip://runs/{run_id}/timeline", resolve_client().get_run_timeline(run_id))

    @resource("drip://charges/{charge_id}", "charge", "Charge", "One charge: amount, status, usage event.")
    async def charge(charge_id: str) -> str:
        return await _read(f"drip://charges/{charge_id}", resolve_client().get_charge(charge_id))

    @resource(
        "drip://webhooks/{webhook_id}",
        "webhook",
        "Webhook",
        "A webhook endpoint: URL, events, status (never its secret). Needs a secret key.",
    )
    async def webhook(webhook_id: str) -> str:
        return await _read(f"drip://webhooks/{webhook_id}", resolve_client().get_webhook(webhook_id))

    @resource(
        "drip://meters",
        "meters",
        "Meters",
        "The meters usage can be tracked and charged against: each active pricing plan's unit type and price.",
    )
    async def meters() -> str:
        return await _read("drip://meters", resolve_client().list_pricing_plans(), _meters)

    server.middleware.append(ResourceScope(resolve_client))
