"""Routes for usage, charges, pricing plans and cost estimates.

``POST /usage`` bills at the active pricing plan whose ``unitType`` equals the
request's ``usageType``. When no active plan matches, the sandbox follows the
provider's OpenAPI (reference section 13.3): **404 ``NOT_FOUND``** ("no active
pricing plan"), and nothing is recorded. Use ``POST /usage/internal`` to track
usage without billing, or create a plan first.

``POST /usage/internal/batch`` is applied at once (the sandbox has no 2 s
buffer) and answers 202 with ``pendingEvents: 0``; a duplicate key is dropped.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import (
    SANDBOX_BUSINESS_ID,
    InsufficientBalance,
    Record,
    from_micros,
    iso_at,
    iso_now,
    new_id,
)
from drip_mcp.sandbox.web import Body, Query, endpoint, json_response, number, services, usdc

__all__ = ["routes"]

_CHARGE_STATUSES = ("PENDING_SETTLEMENT", "PENDING", "CONFIRMED", "FAILED", "REFUNDED", "REFUND_PENDING")
_PAYMENT_TTL_S = 300


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


# -- views ------------------------------------------------------------------------------


def _charge_info(charge: Record) -> dict[str, Any]:
    return {
        "id": charge["id"],
        "amountUsdc": usdc(from_micros(charge["amount_micros"])),
        "amountToken": str(charge["amount_micros"]),
        "txHash": charge["tx_hash"],
        "status": charge["status"],
    }


def _charge_view(charge: Record) -> dict[str, Any]:
    return {
        **_charge_info(charge),
        "usageId": charge["usage_id"],
        "customerId": charge["customer_id"],
        "customer": {
            "id": charge["customer_id"],
            "onchainAddress": charge["onchain_address"],
            "externalCustomerId": charge["external_customer_id"],
        },
        "usageEvent": {
            "id": charge["usage_id"],
            "type": charge["usage_type"],
            "quantity": charge["quantity"],
            "metadata": _load(charge["usage_metadata"]),
            "createdAt": charge["usage_created_at"],
        },
        "blockNumber": None,
        "failureReason": charge["failure_reason"],
        "refundReason": charge["refund_reason"],
        "refundNote": charge["refund_note"],
        "refundTxHash": charge["refund_tx_hash"],
        "refundedAt": charge["refunded_at"],
        "createdAt": charge["created_at"],
        "confirmedAt": charge["confirmed_at"],
    }


def _plan_view(plan: Record) -> dict[str, Any]:
    return {
        "id": plan["id"],
        "businessId": SANDBOX_BUSINESS_ID,
        "name": plan["name"],
        "unitType": plan["unit_type"],
        "unitPriceUsd": plan["unit_price"],
        "currency": plan["currency"],
        "pricingModel": plan["pricing_model"],
        "tiers": [],
        "isActive": bool(plan["is_active"]),
        "createdAt": plan["created_at"],
        "updatedAt": plan["updated_at"],
    }


def _list(items: list[dict[str, Any]]) -> Response:
    return json_response({"data": items, "count": len(items)})


# -- usage ------------------------------------------------------------------------------


def _usage_request(body: Body) -> tuple[str | None, str | None, Record]:
    """Validate the fields all usage POSTs share: (customerId, externalCustomerId, usage)."""
    customer_id = body.string("customerId", max_length=255)
    external_id = body.string("externalCustomerId", max_length=255)
    if body.data.get("customerId") is None and body.data.get("externalCustomerId") is None:
        body.fail("customerId", "customerId or externalCustomerId is required")
    quantity = body.decimal("quantity") if body.data.get("quantity") is not None else Decimal(1)
    usage = {
        "usage_type": body.string("usageType", max_length=100) or "generic",
        "quantity": quantity,
        "units": body.string("units", max_length=50),
        "description": body.string("description", max_length=500),
        "metadata": body.mapping("metadata"),
        "idempotency_key": body.required_string("idempotencyKey", max_length=128),
    }
    body.check()
    return customer_id, external_id, usage


def _payment_required(request: Request, error: InsufficientBalance, usage: Record) -> ApiError:
    now = time.time()
    amount = usdc(from_micros(error.amount_micros))
    payment = {
        "amount": amount,
        "recipient": "0x" + "0" * 40,
        "currency": "USDC",
        "chain": "sandbox",
        "description": f"{usage['quantity']} {usage['usage_type']}",
        "usageId": new_id(),
        "expiresAt": int(now) + _PAYMENT_TTL_S,
        "timestamp": int(now),
        "nonce": new_id(),
    }
    error.extra = {
        "payment": payment,
        "x402": {"version": 1, "paymentRequest": payment},
        "serverTime": {"seconds": int(now), "milliseconds": int(now * 1000), "iso": iso_at(now)},
        "checkout_url": f"{services(request).public_base_url(request)}/v1/checkout",
    }
    return error


@endpoint()
async def charge_usage(request: Request, body: Body) -> Response:
    """POST /usage: billable usage."""
    customer_id, external_id, usage = _usage_request(body)
    try:
        outcome = services(request).store.charge(customer_id, external_id, usage)
    except InsufficientBalance as error:
        raise _payment_required(request, error, usage) from None
    return json_response(
        {
            "success": True,
            "usageEventId": outcome.usage_event["id"],
            "isDuplicate": outcome.is_duplicate,
            "charge": _charge_info(outcome.charge),
        },
        201,
    )


@endpoint()
async def track_usage(request: Request, body: Body) -> Response:
    """POST /usage/internal: usage for visibility only, no charge."""
    customer_id, external_id, usage = _usage_request(body)
    outcome = services(request).store.track_usage(customer_id, external_id, usage)
    event = outcome.usage_event
    return json_response(
        {
            "success": True,
            "usageEventId": event["id"],
            "customerId": event["customer_id"],
            "usageType": event["usage_type"],
            "quantity": number(Decimal(event["quantity"])),
            "units": event["units"],
            "description": event["description"],
            "isInternal": True,
            "isDuplicate": outcome.is_duplicate,
            "message": "Duplicate usage ignored" if outcome.is_duplicate else "Usage recorded",
        },
        201,
    )


@endpoint()
async def track_usage_batch(request: Request, body: Body) -> Response:
    """POST /usage/internal/batch: like /usage/internal, answered 202."""
    customer_id, external_id, usage = _usage_request(body)
    outcome = services(request).store.track_usage(customer_id, external_id, usage)
    return json_response(
        {
            "success": True,
            "customerId": outcome.usage_event["customer_id"],
            "usageType": usage["usage_type"],
            "quantity": number(usage["quantity"]),
            "idempotencyKey": usage["idempotency_key"],
            "pendingEvents": 0,
            "isDuplicate": outcome.is_duplicate,
            "message": "Duplicate event dropped" if outcome.is_duplicate else "Usage event accepted",
        },
        202,
    )


@endpoint()
async def list_usage(request: Request, body: Body) -> Response:
    """GET /usage."""
    query = Query(request)
    limit = query.int_param("limit", default=100, minimum=1, maximum=100)
    customer_id = query.string("customerId")
    query.check()
    rows = services(request).store.list_usage(limit=limit, customer_id=customer_id)
    return _list(
        [
            {
                "id": row["id"],
                "customerId": row["customer_id"],
                "customer": {
                    "id": row["customer_id"],
                    "onchainAddress": row["onchain_address"],
                    "externalCustomerId": row["external_customer_id"],
                },
                "usageType": row["usage_type"],
                "quantity": row["quantity"],
                "description": row["description"],
                "metadata": _load(row["metadata"]),
                "createdAt": row["created_at"],
                "charge": None
                if row["charge_id"] is None
                else {
                    "id": row["charge_id"],
                    "amountUsdc": usdc(from_micros(row["amount_micros"])),
                    "txHash": row["tx_hash"],
                    "status": row["charge_status"],
                },
            }
            for row in rows
        ]
    )


# -- charges ----------------------------------------------------------------------------


@endpoint()
async def list_charges(request: Request, body: Body) -> Response:
    """GET /charges."""
    query = Query(request)
    limit = query.int_param("limit", default=100, minimum=1, maximum=100)
    offset = query.int_param("offset", default=0, minimum=0, maximum=10**9)
    status = query.string("status", choices=_CHARGE_STATUSES)
    customer_id = query.string("customerId")
    query.check()
    rows = services(request).store.list_charges(limit=limit, offset=offset, status=status, customer_id=customer_id)
    return _list([_charge_view(row) for row in rows])


@endpoint()
async def get_charge(request: Request, body: Body) -> Response:
    """GET /charges/{id}."""
    return json_response(_charge_view(services(request).store.charge_record(request.path_params["id"])))


# -- pricing plans ----------------------------------------------------------------------


@endpoint()
async def list_pricing_plans(request: Request, body: Body) -> Response:
    """GET /pricing-plans."""
    return _list([_plan_view(plan) for plan in services(request).store.list_pricing_plans()])


@endpoint(secret_only=True)
async def create_pricing_plan(request: Request, body: Body) -> Response:
    """POST /pricing-plans (FLAT plans only)."""
    name = body.required_string("name", max_length=255)
    unit_type = body.required_string("unitType", max_length=100)
    price = body.decimal("unitPriceUsd")
    if price is None and "unitPriceUsd" not in body.data:
        body.fail("unitPriceUsd", "is required")
    currency = body.string("currency", max_length=10) or "USD"
    body.string("pricingModel", choices=("FLAT",))
    is_active = body.boolean("isActive", default=True)
    body.check()
    assert price is not None
    plan = services(request).store.create_pricing_plan(
        name=name, unit_type=unit_type, unit_price=price, currency=currency, is_active=is_active
    )
    return json_response(_plan_view(plan), 201)


# -- cost estimates ---------------------------------------------------------------------


class _PriceBook:
    """Unit prices for estimates: per-item override, customPricing, plan, defaultUnitPrice."""

    def __init__(self, request: Request, body: Body) -> None:
        self.plans = services(request).store.unit_prices()
        self.default = body.decimal("defaultUnitPrice", positive=False)
        custom = body.mapping("customPricing") or {}
        self.custom: dict[str, Decimal] = {}
        for usage_type in custom:
            price = Body(custom, "customPricing.", body.errors).decimal(usage_type, positive=False)
            if price is not None:
                self.custom[usage_type] = price

    def line_item(
        self, usage_type: str, quantity: Decimal, override: Decimal | None = None
    ) -> tuple[dict[str, Any], Decimal]:
        """One estimate line and its cost."""
        price = override if override is not None else self.custom.get(usage_type, self.plans.get(usage_type))
        has_plan = usage_type in self.plans
        unit_price = price if price is not None else (self.default or Decimal(0))
        cost = quantity * unit_price
        item = {
            "usageType": usage_type,
            "quantity": str(quantity),
            "unitPrice": str(unit_price),
            "estimatedCostUsdc": usdc(cost),
            "hasPricingPlan": has_plan,
        }
        return item, cost


def _estimate(items: list[dict[str, Any]], total: Decimal, **extra: Any) -> Response:
    notes = [] if all(item["hasPricingPlan"] for item in items) else ["Some usage types have no pricing plan"]
    return json_response(
        {
            "businessId": SANDBOX_BUSINESS_ID,
            **extra,
            "lineItems": items,
            "subtotalUsdc": usdc(total),
            "estimatedTotalUsdc": usdc(total),
            "currency": "USDC",
            "isEstimate": True,
            "generatedAt": iso_now(),
            "notes": notes,
        }
    )


@endpoint()
async def estimate_from_usage(request: Request, body: Body) -> Response:
    """POST /cost-estimate/from-usage: price recorded usage in a period."""
    period_start = body.required_string("periodStart")
    period_end = body.required_string("periodEnd")
    customer_id = body.string("customerId")
    include_charged = body.boolean("includeChargedEvents", default=True)
    usage_types = body.strings("usageTypes")
    prices = _PriceBook(request, body)
    body.check()
    if customer_id is not None:  # the customer's contract overrides price its meters
        prices.plans = {**prices.plans, **services(request).store.contract_prices(customer_id)}
    totals = services(request).store.usage_quantities(
        period_start=_normalise_iso(period_start),
        period_end=_normalise_iso(period_end),
        customer_id=customer_id,
        include_charged=include_charged,
    )
    items, total = [], Decimal(0)
    for row in totals:
        if usage_types is not None and row["usage_type"] not in usage_types:
            continue
        item, cost = prices.line_item(row["usage_type"], row["quantity"])
        items.append({**item, "eventCount": row["event_count"]})
        total += cost
    return _estimate(items, total, customerId=customer_id, periodStart=period_start, periodEnd=period_end)


def _normalise_iso(value: str) -> str:
    """An ISO timestamp in the store's form (UTC, ``Z``), so string comparison orders it."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "VALIDATION_ERROR", f"Invalid ISO-8601 timestamp: {value!r}", details=[]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso_at(moment.timestamp())


def _item_usage_type(entry: Body) -> str:
    """An item's ``usageType``, also accepted as ``usage_type`` (what some SDK callers send)."""
    if entry.data.get("usageType") is None and entry.data.get("usage_type") is not None:
        return entry.required_string("usage_type")
    return entry.required_string("usageType")


@endpoint()
async def estimate_hypothetical(request: Request, body: Body) -> Response:
    """POST /cost-estimate/hypothetical: price made-up usage."""
    entries = body.objects("items", required=True)
    prices = _PriceBook(request, body)
    requested = [
        (
            _item_usage_type(entry),
            entry.decimal("quantity"),
            entry.decimal("unitPriceOverride", positive=False),
        )
        for entry in entries
    ]
    for entry in entries:
        if "quantity" not in entry.data:
            entry.fail("quantity", "is required")
    body.check()
    items, total = [], Decimal(0)
    for usage_type, quantity, override in requested:
        assert quantity is not None
        item, cost = prices.line_item(usage_type, quantity, override)
        items.append(item)
        total += cost
    return _estimate(items, total)


routes = [
    Route("/usage", charge_usage, methods=["POST"]),
    Route("/usage", list_usage, methods=["GET"]),
    Route("/usage/internal", track_usage, methods=["POST"]),
    Route("/usage/internal/batch", track_usage_batch, methods=["POST"]),
    Route("/charges", list_charges, methods=["GET"]),
    Route("/charges/{id}", get_charge, methods=["GET"]),
    Route("/pricing-plans", list_pricing_plans, methods=["GET"]),
    Route("/pricing-plans", create_pricing_plan, methods=["POST"]),
    Route("/cost-estimate/from-usage", estimate_from_usage, methods=["POST"]),
    Route("/cost-estimate/hypothetical", estimate_hypothetical, methods=["POST"]),
]
