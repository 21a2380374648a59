"""Routes for entitlement plans, rules, customer assignment and ``POST /entitlements/check``.

Plans, rules and assignment are secret-key only (both SDKs guard them);
``/entitlements/check`` also accepts public keys ([OAS] states no scope and the
Python SDK sends it with any key).

Choices where the contract is silent:

- **An allowed check consumes its ``quantity``.** The SDKs expose no separate
  "record entitlement usage" call: ``checkEntitlement`` is the pre-request
  gate ("check before processing"), so the sandbox counts every *allowed*
  check against the period's allowance and reports ``remaining`` after it. A
  denied check consumes nothing, and a check never consumes part of a
  quantity (a request for more than ``remaining`` is denied whole). Billable
  or internal usage (``/usage*``) does not touch entitlement counts.
- ``COUNT`` rules count quantities (calls, units); ``AMOUNT`` rules count
  USDC. Counts live per period: DAILY resets at 00:00 UTC, MONTHLY on the 1st
  at 00:00 UTC; ``periodResetsAt`` is that next reset. The store's clock
  (``sandbox.store.clock``) decides the period, so tests move time without
  sleeping.
- A customer without a plan (none assigned and no active ``isDefault`` plan)
  is not gated: ``allowed: true, unlimited: true``, ``remaining``/``limit``
  -1, ``period`` MONTHLY. A customer whose plan has no rule for the feature
  is denied (``reason`` says so). Unknown customers get 404.
- ``overrides`` on assignment map a featureKey to a number (the new
  ``limitValue``) or ``{limitValue?, unlimited?}``.
- ``DELETE /entitlement-plans/{id}`` deactivates (the Python SDK docstring):
  the plan stays readable with ``isActive: false`` and stops gating its
  customers. Both DELETEs answer 204. Setting ``isDefault`` clears it on the
  other plans.
- ``GET /customers/{id}/entitlement`` returns the effective plan (assigned,
  else the default), 404 ``NOT_FOUND`` when there is none; ``usage`` maps each
  featureKey to ``{used, limit, remaining, unlimited, limitType, period,
  periodStart, periodResetsAt}``. ``GET …/entitlement/usage`` returns
  ``{customerId, planId, usage}`` with the same map.
- Webhooks: ``entitlement_plan.created|updated|deleted`` (rule changes emit
  ``entitlement_plan.updated``) and ``customer.entitlement.assigned``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import Record, iso_at
from drip_mcp.sandbox.web import Body, endpoint, json_response, number, services

__all__ = ["routes"]

_SLUG = re.compile(r"[a-z0-9_-]+")
_LIMIT_TYPES = ("COUNT", "AMOUNT")
_PERIODS = ("DAILY", "MONTHLY")


def _plan_view(plan: Record) -> dict[str, Any]:
    return {
        "id": plan["id"],
        "name": plan["name"],
        "slug": plan["slug"],
        "description": plan["description"],
        "isDefault": bool(plan["is_default"]),
        "isActive": bool(plan["is_active"]),
        "createdAt": plan["created_at"],
        "updatedAt": plan["updated_at"],
    }


def _rule_view(rule: Record) -> dict[str, Any]:
    return {
        "id": rule["id"],
        "planId": rule["plan_id"],
        "featureKey": rule["feature_key"],
        "limitType": rule["limit_type"],
        "period": rule["period"],
        "limitValue": number(Decimal(rule["limit_value"])),
        "unlimited": bool(rule["unlimited"]),
        "createdAt": rule["created_at"],
        "updatedAt": rule["updated_at"],
    }


def _amount(value: Decimal | None) -> int | float:
    return -1 if value is None else number(value)


def _usage_view(rules: list[Record]) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for rule in rules:
        unlimited = bool(rule["unlimited"])
        limit = None if unlimited else Decimal(rule["limit_value"])
        usage[rule["feature_key"]] = {
            "used": number(rule["used"]),
            "limit": _amount(limit),
            "remaining": _amount(None if limit is None else max(limit - rule["used"], Decimal(0))),
            "unlimited": unlimited,
            "limitType": rule["limit_type"],
            "period": rule["period"],
            "periodStart": iso_at(rule["period_start"].timestamp()),
            "periodResetsAt": iso_at(rule["period_end"].timestamp()),
        }
    return usage


def _entitlement(request: Request) -> Record:
    customer_id = request.path_params["id"]
    entitlement = services(request).store.customer_entitlement(customer_id)
    if entitlement is None:
        raise ApiError(404, "NOT_FOUND", f"No entitlement plan is assigned to customer {customer_id}")
    return entitlement


def _entitlement_view(entitlement: Record) -> dict[str, Any]:
    plan = entitlement["plan"]
    return {
        "planId": plan["id"],
        "planName": plan["name"],
        "planSlug": plan["slug"],
        "rules": [_rule_view(rule) for rule in entitlement["rules"]],
        "overrides": entitlement["overrides"],
        "usage": _usage_view(entitlement["rules"]),
    }


def _rule_fields(body: Body, *, partial: bool) -> Record:
    get = body.string if partial else body.required_string
    fields: Record = {
        "limit_type": get("limitType", choices=_LIMIT_TYPES),
        "period": get("period", choices=_PERIODS),
        "limit_value": body.decimal("limitValue", positive=False),
    }
    if not partial and "limitValue" not in body.data:
        body.fail("limitValue", "is required")
    if fields["limit_value"] is not None and fields["limit_value"] < 0:
        body.fail("limitValue", "must be 0 or more")
    if not partial or "unlimited" in body.data:
        fields["unlimited"] = body.boolean("unlimited", False)
    return {key: value for key, value in fields.items() if value is not None or not partial}


@endpoint(secret_only=True)
async def create_plan(request: Request, body: Body) -> Response:
    """POST /entitlement-plans."""
    fields = {
        "name": body.required_string("name", max_length=255),
        "slug": body.required_string("slug", max_length=100, pattern=_SLUG),
        "description": body.string("description", max_length=1000),
        "is_default": body.boolean("isDefault", False),
    }
    body.check()
    return json_response(_plan_view(services(request).store.create_entitlement_plan(fields)), 201)


@endpoint(secret_only=True)
async def list_plans(request: Request, body: Body) -> Response:
    """GET /entitlement-plans: ``{plans}``."""
    return json_response({"plans": [_plan_view(plan) for plan in services(request).store.list_entitlement_plans()]})


@endpoint(secret_only=True)
async def get_plan(request: Request, body: Body) -> Response:
    """GET /entitlement-plans/{id}: the plan with its rules."""
    store = services(request).store
    plan = store.entitlement_plan(request.path_params["id"])
    rules = store.entitlement_rules(plan["id"])
    return json_response({**_plan_view(plan), "rules": [_rule_view(rule) for rule in rules]})


@endpoint(secret_only=True)
async def update_plan(request: Request, body: Body) -> Response:
    """PATCH /entitlement-plans/{id}."""
    changes: Record = {
        "name": body.string("name", max_length=255),
        "slug": body.string("slug", max_length=100, pattern=_SLUG),
        "description": body.string("description", max_length=1000),
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    if "description" in body.data and body.data["description"] is None:
        changes["description"] = None
    for name, column in (("isDefault", "is_default"), ("isActive", "is_active")):
        if name in body.data:
            changes[column] = body.boolean(name, False)
    body.check()
    plan = services(request).store.update_entitlement_plan(request.path_params["id"], changes)
    return json_response(_plan_view(plan))


@endpoint(secret_only=True)
async def delete_plan(request: Request, body: Body) -> Response:
    """DELETE /entitlement-plans/{id}: deactivate (204)."""
    services(request).store.delete_entitlement_plan(request.path_params["id"])
    return Response(status_code=204)


@endpoint(secret_only=True)
async def add_rule(request: Request, body: Body) -> Response:
    """POST /entitlement-plans/{id}/rules."""
    fields = {"feature_key": body.required_string("featureKey", max_length=100), **_rule_fields(body, partial=False)}
    body.check()
    rule = services(request).store.add_entitlement_rule(request.path_params["id"], fields)
    return json_response(_rule_view(rule), 201)


@endpoint(secret_only=True)
async def list_rules(request: Request, body: Body) -> Response:
    """GET /entitlement-plans/{id}/rules: ``{rules}``."""
    rules = services(request).store.entitlement_rules(request.path_params["id"])
    return json_response({"rules": [_rule_view(rule) for rule in rules]})


@endpoint(secret_only=True)
async def update_rule(request: Request, body: Body) -> Response:
    """PATCH /entitlement-rules/{ruleId}."""
    changes = _rule_fields(body, partial=True)
    body.check()
    rule = services(request).store.update_entitlement_rule(request.path_params["ruleId"], changes)
    return json_response(_rule_view(rule))


@endpoint(secret_only=True)
async def delete_rule(request: Request, body: Body) -> Response:
    """DELETE /entitlement-rules/{ruleId}: 204."""
    services(request).store.delete_entitlement_rule(request.path_params["ruleId"])
    return Response(status_code=204)


def _overrides(body: Body) -> dict[str, Any]:
    overrides = body.mapping("overrides") or {}
    for key, value in overrides.items():
        valid = (isinstance(value, (int, Decimal)) and not isinstance(value, bool) and value >= 0) or (
            isinstance(value, dict)
            and set(value) <= {"limitValue", "unlimited"}
            and (value.get("limitValue") is None or isinstance(value["limitValue"], (int, Decimal)))
            and (value.get("unlimited") is None or isinstance(value["unlimited"], bool))
        )
        if not valid:
            body.fail(f"overrides.{key}", "must be a number or {limitValue?, unlimited?}")
    return {
        key: number(value) if isinstance(value, Decimal) else value
        for key, value in overrides.items()
        if not isinstance(value, dict)
    } | {
        key: {k: number(v) if isinstance(v, Decimal) else v for k, v in value.items()}
        for key, value in overrides.items()
        if isinstance(value, dict)
    }


@endpoint(secret_only=True)
async def assign(request: Request, body: Body) -> Response:
    """PUT /customers/{id}/entitlement."""
    plan_id = body.required_string("planId")
    overrides = _overrides(body)
    body.check()
    entitlement = services(request).store.assign_entitlement(request.path_params["id"], plan_id, overrides)
    return json_response(_entitlement_view(entitlement))


@endpoint(secret_only=True)
async def get_assignment(request: Request, body: Body) -> Response:
    """GET /customers/{id}/entitlement."""
    return json_response(_entitlement_view(_entitlement(request)))


@endpoint(secret_only=True)
async def get_usage(request: Request, body: Body) -> Response:
    """GET /customers/{id}/entitlement/usage."""
    entitlement = _entitlement(request)
    return json_response(
        {
            "customerId": request.path_params["id"],
            "planId": entitlement["plan"]["id"],
            "usage": _usage_view(entitlement["rules"]),
        }
    )


@endpoint()
async def check(request: Request, body: Body) -> Response:
    """POST /entitlements/check: allowed or not, consuming the quantity when allowed."""
    customer_id = body.required_string("customerId")
    feature_key = body.required_string("featureKey", max_length=100)
    quantity = body.decimal("quantity")
    body.check()
    result = services(request).store.check_entitlement(customer_id, feature_key, quantity or Decimal(1))
    view = {
        "allowed": result["allowed"],
        "featureKey": feature_key,
        "remaining": _amount(result["remaining"]),
        "limit": _amount(result["limit"]),
        "unlimited": result["unlimited"],
        "period": result["period"],
        "periodResetsAt": iso_at(result["period_end"].timestamp()),
    }
    if result["reason"] is not None:
        view["reason"] = result["reason"]
    return json_response(view)


routes = [
    Route("/entitlement-plans", create_plan, methods=["POST"]),
    Route("/entitlement-plans", list_plans, methods=["GET"]),
    Route("/entitlement-plans/{id}", get_plan, methods=["GET"]),
    Route("/entitlement-plans/{id}", update_plan, methods=["PATCH"]),
    Route("/entitlement-plans/{id}", delete_plan, methods=["DELETE"]),
    Route("/entitlement-plans/{id}/rules", add_rule, methods=["POST"]),
    Route("/entitlement-plans/{id}/rules", list_rules, methods=["GET"]),
    Route("/entitlement-rules/{ruleId}", update_rule, methods=["PATCH"]),
    Route("/entitlement-rules/{ruleId}", delete_rule, methods=["DELETE"]),
    Route("/customers/{id}/entitlement", assign, methods=["PUT"]),
    Route("/customers/{id}/entitlement", get_assignment, methods=["GET"]),
    Route("/customers/{id}/entitlement/usage", get_usage, methods=["GET"]),
    Route("/entitlements/check", check, methods=["POST"]),
]
