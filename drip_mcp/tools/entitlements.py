"""Toolset ``entitlements``: gate features by plan limits, and manage the plans, rules and assignments.

``drip_check_entitlement`` takes any key and counts an allowed check against the customer's allowance
(Drip has no separate "record entitlement usage" call). Plans, rules and customer assignment need a
secret key; their scope comes from the endpoints. Everything is a pass-through `operation`, except the
plan list (an ``active_only`` filter applied here) and assignment overrides (sent as Drip's map).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer

from drip_mcp.tools.base import (
    MAX_QUANTITY,
    CustomerId,
    IdempotencyKey,
    PositiveQuantity,
    ToolInput,
    ToolSpec,
)
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.declare import WireResult, operation, snake_keys

__all__ = ["TOOLS"]

_ID = r"^[A-Za-z0-9_.:-]+$"

PlanId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=_ID, description="Plan id (drip_list_entitlement_plans).")
]
RuleId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=_ID, description="Rule id (drip_list_entitlement_rules).")
]
FeatureKey = Annotated[
    str, Field(min_length=1, max_length=100, pattern=_ID, description="The gated feature, e.g. 'api_calls'.")
]
LimitType = Literal["COUNT", "AMOUNT"]
Period = Literal["DAILY", "MONTHLY"]
LimitValue = Annotated[
    Decimal,
    Field(ge=0, le=MAX_QUANTITY, decimal_places=6, allow_inf_nan=False),
    WithJsonSchema(
        {
            "type": "number",
            "minimum": 0,
            "maximum": int(MAX_QUANTITY),
            "description": "Allowance per period: a count (COUNT) or USDC (AMOUNT).",
        }
    ),
]
PlanName = Annotated[str, Field(min_length=1, max_length=255)]
PlanDescription = Annotated[str | None, Field(max_length=1000)]


class CheckEntitlementInput(ToolInput):
    customer_id: CustomerId
    feature_key: FeatureKey
    quantity: PositiveQuantity = Field(default=Decimal(1), description="How much this use needs.")
    idempotency_key: IdempotencyKey = None


class CreatePlanInput(ToolInput):
    name: PlanName
    slug: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_-]+$")]
    description: PlanDescription = None
    is_default: bool = Field(default=False, description="Gate every customer without a plan of their own.")
    idempotency_key: IdempotencyKey = None


class ListPlansInput(ToolInput):
    active_only: bool = Field(default=False, description="Leave out deleted (inactive) plans.")


class PlanRef(ToolInput):
    plan_id: PlanId


class UpdatePlanInput(PlanRef):
    name: PlanName | None = None
    description: PlanDescription = None
    is_default: bool | None = None
    idempotency_key: IdempotencyKey = None


class AddRuleInput(PlanRef):
    feature_key: FeatureKey
    limit_type: LimitType
    period: Period
    limit_value: LimitValue
    unlimited: bool = Field(default=False, description="No limit at all (limit_value is then ignored).")
    idempotency_key: IdempotencyKey = None


class RuleRef(ToolInput):
    rule_id: RuleId


class UpdateRuleInput(RuleRef):
    limit_type: LimitType | None = None
    period: Period | None = None
    limit_value: LimitValue | None = None
    unlimited: bool | None = None
    idempotency_key: IdempotencyKey = None


class EntitlementOverride(BaseModel):
    """One feature's limit for this customer only."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    feature_key: FeatureKey
    limit_value: LimitValue | None = None
    unlimited: bool | None = None


class AssignInput(ToolInput):
    customer_id: CustomerId
    plan_id: PlanId
    overrides: list[EntitlementOverride] | None = Field(
        default=None, max_length=100, description="Per-customer limits that replace the plan's."
    )
    idempotency_key: IdempotencyKey = None

    @field_serializer("overrides")
    def _overrides_as_map(self, overrides: list[EntitlementOverride] | None) -> dict[str, Any] | None:
        """Drip's shape: ``{featureKey: {limitValue?, unlimited?}}``."""
        if overrides is None:
            return None
        return {
            o.feature_key: {
                key: value
                for key, value in (("limitValue", o.limit_value), ("unlimited", o.unlimited))
                if value is not None
            }
            for o in overrides
        }


class CustomerRef(ToolInput):
    customer_id: CustomerId


async def list_entitlement_plans(ctx: ToolContext, inp: ListPlansInput) -> WireResult:
    data, _ = await ctx.client.request("list_entitlement_plans")
    reply: dict[str, Any] = snake_keys(data) if isinstance(data, dict) else {"plans": data or []}
    plans = reply.get("plans", reply.get("data", []))
    if inp.active_only and isinstance(plans, list):
        plans = [p for p in plans if not isinstance(p, dict) or p.get("is_active", True)]
    return WireResult(**{**reply, "plans": plans, "count": len(plans)})


def _op(name: str, title: str, description: str, **kw: Any) -> ToolSpec[Any, WireResult]:
    return operation(name, title, description, toolset="entitlements", endpoint=name.removeprefix("drip_"), **kw)


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    _op(
        "drip_check_entitlement",
        "Check entitlement",
        "Whether a customer may use a feature now, with remaining allowance. An allowed check counts quantity "
        "against the limit: check once per use, before doing the work.",
        input_model=CheckEntitlementInput,
        read_only=False,
        idempotent=False,
        core=True,
    ),
    _op(
        "drip_create_entitlement_plan",
        "Create entitlement plan",
        "Create a plan of feature limits; add limits with drip_add_entitlement_rule.",
        input_model=CreatePlanInput,
    ),
    dataclasses.replace(
        _op(
            "drip_list_entitlement_plans",
            "List entitlement plans",
            "List entitlement plans (deleted ones show is_active false). Read-only.",
            input_model=ListPlansInput,
        ),
        handler=list_entitlement_plans,
    ),
    _op(
        "drip_get_entitlement_plan",
        "Get entitlement plan",
        "Get an entitlement plan with its rules. Read-only.",
        input_model=PlanRef,
    ),
    _op(
        "drip_update_entitlement_plan",
        "Update entitlement plan",
        "Rename a plan, change its description, or make it the default plan.",
        input_model=UpdatePlanInput,
        idempotent=True,
    ),
    _op(
        "drip_delete_entitlement_plan",
        "Delete entitlement plan",
        "Deactivate a plan: it stops gating its customers (they become ungated).",
        input_model=PlanRef,
        destructive=True,
    ),
    _op(
        "drip_add_entitlement_rule",
        "Add entitlement rule",
        "Add a feature limit to a plan: a COUNT or USDC AMOUNT allowed per DAILY or MONTHLY period.",
        input_model=AddRuleInput,
    ),
    _op(
        "drip_list_entitlement_rules",
        "List entitlement rules",
        "List a plan's feature limits. Read-only.",
        input_model=PlanRef,
    ),
    _op(
        "drip_update_entitlement_rule",
        "Update entitlement rule",
        "Change a feature limit's type, period, value or unlimited flag.",
        input_model=UpdateRuleInput,
        idempotent=True,
    ),
    _op(
        "drip_delete_entitlement_rule",
        "Delete entitlement rule",
        "Remove a feature limit from its plan; the plan then denies that feature. Cannot be undone.",
        input_model=RuleRef,
        destructive=True,
    ),
    _op(
        "drip_assign_customer_entitlement",
        "Assign customer entitlement",
        "Put a customer on a plan, replacing any earlier plan and overrides.",
        input_model=AssignInput,
    ),
    _op(
        "drip_get_customer_entitlement",
        "Get customer entitlement",
        "A customer's effective plan, rules, overrides and usage this period. Read-only.",
        input_model=CustomerRef,
    ),
)
