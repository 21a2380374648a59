"""Pydantic models of what Drip returns, snake_case in Python, camelCase on the wire.

Response models ignore fields they do not know (the real API adds fields), so a
newer Drip never breaks an older drip-mcp. Money is `Decimal` in Python and a
6-decimal string on the way out (``"0.100000"``), never a float. Shapes follow
the published SDKs (see ``reference/drip-api.md`` section 10).
"""

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

__all__ = [
    "AsyncChargeSummary",
    "Balance",
    "Charge",
    "ChargeAsyncResult",
    "ChargeResult",
    "ChargeSummary",
    "Checkout",
    "CostEstimate",
    "Customer",
    "EmitEventsBatchResult",
    "EndRunResult",
    "EstimateLineItem",
    "EventResult",
    "Health",
    "Money",
    "PricingPlan",
    "RecordRunResult",
    "RunDetails",
    "RunResult",
    "RunTimeline",
    "TrackUsageResult",
    "Webhook",
    "WebhookSecret",
    "WebhookTestResult",
    "WireModel",
    "Workflow",
    "format_money",
]


def format_money(value: Decimal) -> str:
    """Six decimal places, as Drip writes USDC amounts."""
    return f"{value:.6f}"


def _to_decimal(value: Any) -> Any:
    # Floats go through str() so 0.1 stays 0.1 rather than 0.1000000000000000055...
    return Decimal(str(value)) if isinstance(value, float) else value


Money = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    Field(description="USDC amount as a 6-decimal string, e.g. '0.100000'"),
]
"""A USDC amount: exact in Python, a 6-decimal string in JSON."""


class WireModel(BaseModel):
    """Base for Drip payloads: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True)


RunStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]


# --- customers -------------------------------------------------------------------------------


class Customer(WireModel):
    """A Drip customer (the party being billed)."""

    id: str
    external_customer_id: str | None = None
    onchain_address: str | None = None
    email: str | None = None
    is_internal: bool = False
    status: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str
    updated_at: str | None = None


class Balance(WireModel):
    """A customer's cached USDC balance."""

    customer_id: str
    onchain_address: str | None = None
    balance_usdc: Money
    pending_charges_usdc: Money = Decimal(0)
    available_usdc: Money
    last_synced_at: str | None = None


# --- usage, charges, meters, estimates -------------------------------------------------------


class TrackUsageResult(WireModel):
    """``POST /usage/internal``: usage recorded on the ledger, nothing billed."""

    success: bool = True
    usage_event_id: str
    customer_id: str
    usage_type: str
    quantity: Decimal
    is_internal: bool = True
    is_duplicate: bool = False
    message: str | None = None


class ChargeSummary(WireModel):
    """The charge inside a ``POST /usage`` result."""

    id: str
    amount_usdc: Money
    amount_token: str | None = None
    tx_hash: str | None = None
    status: str


class ChargeResult(WireModel):
    """``POST /usage``: a billable usage event and its charge."""

    success: bool = True
    usage_event_id: str
    is_duplicate: bool = False
    charge: ChargeSummary | None = None
    mode: str | None = None


class AsyncChargeSummary(ChargeSummary):
    """The charge inside a ``POST /usage/async`` result: PENDING until it settles."""

    estimated_confirmation_time: str | None = None


class ChargeAsyncResult(ChargeResult):
    """``POST /usage/async`` (202): billable usage queued; the charge settles in the background."""

    charge: AsyncChargeSummary | None = None
    message: str | None = None


class Charge(WireModel):
    """A charge as listed by ``GET /charges``."""

    id: str
    usage_id: str | None = None
    customer_id: str
    amount_usdc: Money
    amount_token: str | None = None
    tx_hash: str | None = None
    status: str
    failure_reason: str | None = None
    created_at: str
    confirmed_at: str | None = None


class PricingPlan(WireModel):
    """A pricing plan; its ``unit_type`` is the meter name usage is tracked against."""

    id: str
    name: str
    unit_type: str
    unit_price_usd: Decimal
    pricing_model: str | None = "FLAT"
    currency: str | None = "USD"
    is_active: bool = True


class EstimateLineItem(WireModel):
    """One meter's line in a cost estimate."""

    usage_type: str
    quantity: Decimal
    unit_price: Decimal
    estimated_cost_usdc: Money
    event_count: int | None = None
    has_pricing_plan: bool


class CostEstimate(WireModel):
    """A cost estimate (no side effects)."""

    line_items: list[EstimateLineItem]
    subtotal_usdc: Money
    estimated_total_usdc: Money
    currency: str = "USDC"
    period_start: str | None = None
    period_end: str | None = None
    generated_at: str | None = None
    notes: list[str] = Field(default_factory=list)


class Checkout(WireModel):
    """A hosted checkout session that tops up a balance (snake_case on the wire)."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, extra="ignore", defer_build=True)

    id: str
    url: str
    expires_at: str | None = None
    amount_usd: Decimal | None = None


# --- workflows, runs, events ------------------------------------------------------------------


class Workflow(WireModel):
    """A workflow: the kind of agent job runs belong to."""

    id: str
    name: str
    slug: str
    product_surface: str | None = None
    description: str | None = None
    is_active: bool = True
    created_at: str | None = None


class RunResult(WireModel):
    """``POST /runs``: a started run."""

    id: str
    customer_id: str
    workflow_id: str
    workflow_name: str | None = None
    status: RunStatus
    correlation_id: str | None = None
    created_at: str | None = None


class EndRunResult(WireModel):
    """``PATCH /runs/{id}``: an ended run."""

    id: str
    status: RunStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    event_count: int = 0
    total_cost_units: Decimal | None = None


class RunTotals(WireModel):
    event_count: int = 0
    total_quantity: Decimal | None = None
    total_cost_units: Decimal | None = None


class RunDetails(WireModel):
    """``GET /runs/{id}``."""

    id: str
    customer_id: str
    workflow_id: str
    workflow_name: str | None = None
    status: RunStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    error_message: str | None = None
    error_code: str | None = None
    correlation_id: str | None = None
    metadata: dict[str, Any] | None = None
    totals: RunTotals = Field(default_factory=RunTotals)


class TimelineEvent(WireModel):
    id: str
    event_type: str
    outcome: str | None = None
    description: str | None = None
    timestamp: str | None = None
    cost_usdc: str | None = None
    metadata: dict[str, Any] | None = None


class RunTimeline(WireModel):
    """``GET /runs/{id}/timeline``: the run's events in order, with a summary."""

    run_id: str
    workflow_name: str | None = None
    status: RunStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    events: list[TimelineEvent]
    summary: dict[str, Any] = Field(default_factory=dict)
    has_more: bool = False
    next_cursor: str | None = None


class EventResult(WireModel):
    """``POST /run-events``: one recorded event."""

    id: str
    run_id: str
    event_type: str
    quantity: Decimal | None = None
    cost_units: Decimal | None = None
    is_duplicate: bool = False
    timestamp: str | None = None


class BatchEvent(WireModel):
    id: str
    event_type: str
    is_duplicate: bool = False


class EmitEventsBatchResult(WireModel):
    """``POST /run-events/batch``."""

    success: bool = True
    created: int
    duplicates: int = 0
    events: list[BatchEvent] = Field(default_factory=list)


class RecordedRun(WireModel):
    id: str
    workflow_id: str
    workflow_name: str | None = None
    status: RunStatus
    duration_ms: int | None = None


class RecordedEventCounts(WireModel):
    created: int
    duplicates: int = 0


class RecordRunResult(WireModel):
    """``POST /runs/record``: a whole run in one call."""

    run: RecordedRun
    events: RecordedEventCounts
    total_cost_units: Decimal | None = None
    summary: str | None = None


# --- webhooks, health -------------------------------------------------------------------------


class Webhook(WireModel):
    """A webhook endpoint (its secret is never part of this model)."""

    id: str
    url: str
    events: list[str]
    description: str | None = None
    filters: dict[str, Any] | None = None
    is_active: bool = True
    health_status: str | None = None
    created_at: str | None = None


class WebhookSecret(WireModel):
    """The ``whsec_`` signing secret, returned only on create and rotate."""

    secret: str


class WebhookTestResult(WireModel):
    """``POST /webhooks/{id}/test``."""

    message: str | None = None
    delivery_id: str | None = None
    status: str
    response_code: int | None = None


class Health(WireModel):
    """``GET /health`` at the API root."""

    status: str
    timestamp: float | int | str | None = None
