"""Toolset ``subscriptions``: recurring USDC subscriptions and their lifecycle (any key).

ACTIVE (or TRIALING) on create; pause (from ACTIVE) and resume (from PAUSED); cancel now or at the end
of the period. A transition Drip does not allow is a 409 with the current status. All pass-through
`operation` declarations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.tools.base import CustomerId, IdempotencyKey, Metadata, Meter, ToolInput, ToolSpec, UsdcAmount
from drip_mcp.tools.declare import WireResult, operation

__all__ = ["TOOLS"]

SubscriptionId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Subscription id."),
]
Interval = Literal["DAILY", "WEEKLY", "MONTHLY", "ANNUAL"]
Status = Literal["ACTIVE", "PAUSED", "CANCELLED", "EXPIRED", "PAST_DUE", "TRIALING"]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str | None, Field(max_length=1000)]
IncludedUsage = Annotated[
    int | None, Field(ge=0, le=10**12, description="Units of overage_unit_type included each period.")
]
OverageUnitType = Annotated[Meter | None, Field(description="The meter billed beyond included_usage.")]
IsoDateTime = Annotated[
    str,
    Field(
        max_length=40,
        pattern=r"^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
        r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
        description="ISO-8601 date-time in the future, e.g. 2026-07-01T00:00:00Z.",
    ),
]


class CreateSubscriptionInput(ToolInput):
    customer_id: CustomerId
    name: Name
    interval: Interval
    price_usdc: UsdcAmount = Field(description="Price per interval in USDC.")
    description: Description = None
    metadata: Metadata = None
    trial_days: int | None = Field(default=None, ge=1, le=365, description="Free trial before the first period.")
    included_usage: IncludedUsage = None
    overage_unit_type: OverageUnitType = None
    idempotency_key: IdempotencyKey = None


class ListSubscriptionsInput(ToolInput):
    customer_id: CustomerId | None = None
    status: Status | None = None
    limit: int = Field(default=20, ge=1, le=100)


class SubscriptionRef(ToolInput):
    subscription_id: SubscriptionId


class UpdateSubscriptionInput(SubscriptionRef):
    name: Name | None = None
    description: Description = None
    price_usdc: UsdcAmount | None = None
    metadata: Metadata = None
    included_usage: IncludedUsage = None
    overage_unit_type: OverageUnitType = None
    idempotency_key: IdempotencyKey = None


class CancelSubscriptionInput(SubscriptionRef):
    immediate: bool = Field(default=False, description="Cancel now instead of at the end of the current period.")
    idempotency_key: IdempotencyKey = None


class PauseSubscriptionInput(SubscriptionRef):
    resume_date: IsoDateTime | None = None
    idempotency_key: IdempotencyKey = None


class ResumeSubscriptionInput(SubscriptionRef):
    idempotency_key: IdempotencyKey = None


def _op(name: str, title: str, description: str, **kw: Any) -> ToolSpec[Any, WireResult]:
    return operation(name, title, description, toolset="subscriptions", endpoint=name.removeprefix("drip_"), **kw)


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    _op(
        "drip_create_subscription",
        "Create subscription",
        "Start a recurring subscription for a customer at a USDC price per interval, optionally after a trial.",
        input_model=CreateSubscriptionInput,
    ),
    _op(
        "drip_list_subscriptions",
        "List subscriptions",
        "List subscriptions, newest first, by customer or status. Read-only.",
        input_model=ListSubscriptionsInput,
    ),
    _op(
        "drip_get_subscription",
        "Get subscription",
        "Get a subscription: status, current period, trial and cancellation. Read-only.",
        input_model=SubscriptionRef,
    ),
    _op(
        "drip_update_subscription",
        "Update subscription",
        "Change a subscription's name, description, price, metadata or included usage (not once cancelled).",
        input_model=UpdateSubscriptionInput,
        idempotent=True,
    ),
    _op(
        "drip_cancel_subscription",
        "Cancel subscription",
        "Cancel a subscription at the end of its period, or now with immediate: true. Cannot be undone.",
        input_model=CancelSubscriptionInput,
        destructive=True,
        idempotent=True,
    ),
    _op(
        "drip_pause_subscription",
        "Pause subscription",
        "Pause an active subscription, until resume_date if given; drip_resume_subscription resumes it.",
        input_model=PauseSubscriptionInput,
        idempotent=True,
    ),
    _op(
        "drip_resume_subscription",
        "Resume subscription",
        "Resume a paused subscription; a new billing period starts now.",
        input_model=ResumeSubscriptionInput,
        idempotent=True,
    ),
)
