"""Toolset ``usage``: track usage (ledger only, no billing), meters and estimates."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
from pydantic import AfterValidator, Field, model_validator

from drip_mcp.api.models import CostEstimate, Money
from drip_mcp.api.outbox import Queued
from drip_mcp.errors import DripError, InvalidInputError
from drip_mcp.keys import KeyType
from drip_mcp.safety.ledger import LedgerEntry
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    Metadata,
    Meter,
    MutationResult,
    PositiveQuantity,
    Quantity,
    ToolInput,
    ToolOutput,
    ToolSpec,
    batch_event_key,
    new_batch_id,
)
from drip_mcp.tools.context import ToolContext

logger = logging.getLogger("drip_mcp.tools.usage")

Units = Annotated[str | None, Field(max_length=50, description="Unit label for display, e.g. 'tokens'.")]
Description = Annotated[str | None, Field(max_length=500, description="Short human-readable note.")]

BATCH_LIMIT = 500
MAX_UNIT_PRICE = 10**6
BATCH_CONCURRENCY = 16
PROGRESS_UPDATES = 20  # at most ~20 progress notifications per batch (one per 5%), not one per event


class TrackUsageInput(ToolInput):
    # Not `CustomerId`: its description would be listed a second time inside the nullable schema.
    customer_id: Annotated[
        str | None,
        Field(max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$", description="customer_id or external_customer_id."),
    ] = None
    external_customer_id: Annotated[
        str | None, Field(min_length=1, max_length=255, description="Your own id; created if unknown.")
    ] = None
    meter: Meter
    quantity: Quantity = Field(description="How much was used, in the meter's unit.")
    units: Units = None
    description: Description = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None

    @model_validator(mode="after")
    def _one_customer(self) -> TrackUsageInput:
        if (self.customer_id is None) == (self.external_customer_id is None):
            raise ValueError("give exactly one of customer_id or external_customer_id")
        return self

    @property
    def customer(self) -> str:
        """The customer as given (Drip id or your own id), for the session ledger."""
        return self.customer_id or self.external_customer_id or ""


class TrackUsageOutput(MutationResult):
    status: Literal["recorded", "queued"] = Field(
        description="'recorded': Drip has it. 'queued': Drip was unreachable; it is stored locally and will be "
        "delivered once (do not retry)."
    )
    usage_event_id: str | None = Field(default=None, description="Drip's id for the usage event (None if queued).")
    customer_id: str | None = Field(default=None, description="Drip's customer id (None if queued by external id).")
    external_customer_id: str | None = None
    meter: str
    quantity: Decimal


async def track_usage(ctx: ToolContext, inp: TrackUsageInput) -> TrackUsageOutput:
    metadata = ctx.clean_metadata(inp.metadata)
    try:
        reply = await ctx.client.track_usage(
            customer_id=inp.customer_id,
            external_customer_id=inp.external_customer_id,
            meter=inp.meter,
            quantity=inp.quantity,
            units=inp.units,
            description=inp.description,
            metadata=metadata,
            idempotency_key=inp.idempotency_key,
            durable=ctx.durable,
        )
    except Queued as queued:
        return TrackUsageOutput(
            status="queued",
            customer_id=inp.customer_id,
            external_customer_id=inp.external_customer_id,
            meter=inp.meter,
            quantity=inp.quantity,
            idempotency_key=queued.idempotency_key,
            redacted_paths=ctx.redacted,
        )
    return TrackUsageOutput(
        status="recorded",
        usage_event_id=reply.data.usage_event_id,
        customer_id=reply.data.customer_id,
        meter=reply.data.usage_type,
        quantity=reply.data.quantity,
        idempotency_key=reply.idempotency_key,
        is_duplicate=reply.data.is_duplicate,
        redacted_paths=ctx.redacted,
    )


class TrackUsageBatchInput(ToolInput):
    events: list[TrackUsageInput] = Field(
        min_length=1, max_length=BATCH_LIMIT, description=f"1 to {BATCH_LIMIT} usage events."
    )


class BatchItemResult(ToolOutput):
    index: int
    status: Literal["recorded", "queued", "failed"]
    idempotency_key: str | None = None
    usage_event_id: str | None = None
    is_duplicate: bool = False
    error: dict[str, Any] | None = None


class TrackUsageBatchOutput(ToolOutput):
    batch_id: str = Field(description="drip_get_batch reports this batch from the outbox, also after a cancel.")
    recorded: int
    queued: int
    failed: int
    duplicates: int
    results: list[BatchItemResult]
    redacted_paths: list[str] = Field(default_factory=list)


async def track_usage_batch(ctx: ToolContext, inp: TrackUsageBatchInput) -> TrackUsageBatchOutput:
    # Validate every event's metadata before sending anything: a batch is refused whole or sent whole.
    cleaned = [ctx.clean_metadata(e.metadata, path=f"events[{i}].metadata") for i, e in enumerate(inp.events)]
    total = len(inp.events)
    batch_id = new_batch_id()
    # Each event's key names its batch, so drip_get_batch finds the batch's writes in the outbox.
    keys = [e.idempotency_key or batch_event_key(batch_id, i) for i, e in enumerate(inp.events)]
    results: list[BatchItemResult | None] = [None] * total
    limiter = anyio.Semaphore(BATCH_CONCURRENCY)
    done = 0
    progress_step = max(1, total // PROGRESS_UPDATES)

    async def send(index: int) -> None:
        nonlocal done
        event = inp.events[index]
        async with limiter:
            try:
                reply = await ctx.client.track_usage(
                    customer_id=event.customer_id,
                    external_customer_id=event.external_customer_id,
                    meter=event.meter,
                    quantity=event.quantity,
                    units=event.units,
                    description=event.description,
                    metadata=cleaned[index],
                    idempotency_key=keys[index],
                    durable=ctx.durable,
                )
            except Queued as queued:
                results[index] = BatchItemResult(index=index, status="queued", idempotency_key=queued.idempotency_key)
            except DripError as exc:
                results[index] = BatchItemResult(
                    index=index, status="failed", idempotency_key=exc.idempotency_key, error=exc.to_dict()
                )
            else:
                results[index] = BatchItemResult(
                    index=index,
                    status="recorded",
                    idempotency_key=reply.idempotency_key,
                    usage_event_id=reply.data.usage_event_id,
                    is_duplicate=reply.data.is_duplicate,
                )
        done += 1
        if done % progress_step == 0 or done == total:
            await ctx.progress(done, total, f"{done}/{total} usage events sent")

    def outcome() -> TrackUsageBatchOutput:
        final = [r for r in results if r is not None]
        return TrackUsageBatchOutput(
            batch_id=batch_id,
            recorded=sum(r.status == "recorded" for r in final),
            queued=sum(r.status == "queued" for r in final),
            failed=sum(r.status == "failed" for r in final),
            duplicates=sum(r.is_duplicate for r in final),
            results=final,
            redacted_paths=ctx.redacted,
        )

    try:
        async with anyio.create_task_group() as tg:
            for index in range(total):
                tg.start_soon(send, index)
    except anyio.get_cancelled_exc_class():
        # The client cancelled: no result will be read, but the writes that landed are in the ledger,
        # and drip_get_batch reports the rest (delivered, queued, failed) from the outbox.
        with anyio.CancelScope(shield=True):
            partial = outcome()
            for entry in _batch_ledger(inp, partial, None):
                await ctx.services.ledger.add(entry, scope=ctx.scope)
            logger.info(
                "batch %s cancelled after %d recorded, %d queued, %d failed of %d",
                batch_id,
                partial.recorded,
                partial.queued,
                partial.failed,
                total,
            )
        raise
    return outcome()


class ListMetersInput(ToolInput):
    meter: Meter | None = Field(default=None, description="Only this meter (omit for all).")


class MeterInfo(ToolOutput):
    meter: str = Field(description="Pass this as `meter` to drip_track_usage / drip_charge.")
    name: str
    unit_price_usd: Decimal
    pricing_model: str | None = None
    is_active: bool
    plan_id: str


class ListMetersOutput(ToolOutput):
    meters: list[MeterInfo]
    count: int


async def list_meters(ctx: ToolContext, inp: ListMetersInput) -> ListMetersOutput:
    page = await ctx.client.list_pricing_plans()
    meters = [
        MeterInfo(
            meter=p.unit_type,
            name=p.name,
            unit_price_usd=p.unit_price_usd,
            pricing_model=p.pricing_model,
            is_active=p.is_active,
            plan_id=p.id,
        )
        for p in page.data
        if inp.meter is None or p.unit_type == inp.meter
    ]
    return ListMetersOutput(meters=meters, count=len(meters))


class EstimateItem(ToolInput):
    meter: Meter
    quantity: PositiveQuantity = Field(description="Hypothetical quantity, > 0.")
    unit_price_override: Annotated[
        Decimal | None,
        Field(ge=0, le=MAX_UNIT_PRICE, allow_inf_nan=False, description="Price per unit to assume, USD."),
    ] = None


UnitPrice = Annotated[Decimal, Field(ge=0, le=MAX_UNIT_PRICE, allow_inf_nan=False)]


class CustomPrice(ToolInput):
    meter: Meter
    unit_price: UnitPrice = Field(description="USD per unit.")


def _no_repeated_meter(prices: list[CustomPrice] | None) -> list[CustomPrice] | None:
    meters = [p.meter for p in prices or []]
    repeated = sorted({m for m in meters if meters.count(m) > 1})
    if repeated:
        raise ValueError(f"meter(s) {repeated} priced more than once")
    return prices


CustomPricing = Annotated[
    list[CustomPrice] | None,
    Field(max_length=100, description="Per-meter unit prices that beat the pricing plans'."),
    AfterValidator(_no_repeated_meter),
]
DefaultUnitPrice = Annotated[UnitPrice | None, Field(description="USD per unit for meters with no pricing plan.")]


def _price_fields(default_unit_price: Decimal | None, custom_pricing: list[CustomPrice] | None) -> dict[str, Any]:
    """Drip's wire shape: prices as strings, ``customPricing`` a ``{usageType: price}`` map."""
    return {
        "default_unit_price": None if default_unit_price is None else str(default_unit_price),
        "custom_pricing": None if custom_pricing is None else {p.meter: str(p.unit_price) for p in custom_pricing},
    }


class EstimateCostInput(ToolInput):
    items: list[EstimateItem] = Field(min_length=1, max_length=100, description="Meters and quantities to price.")
    default_unit_price: DefaultUnitPrice = None
    custom_pricing: CustomPricing = None


class EstimateLine(ToolOutput):
    meter: str
    quantity: Decimal
    unit_price: Decimal
    estimated_cost_usdc: Money
    has_pricing_plan: bool


class EstimateOutput(ToolOutput):
    lines: list[EstimateLine]
    estimated_total_usdc: Money
    currency: str = "USDC"
    notes: list[str] = Field(default_factory=list)


def _estimate_output(est: CostEstimate) -> EstimateOutput:
    return EstimateOutput(
        lines=[
            EstimateLine(
                meter=li.usage_type,
                quantity=li.quantity,
                unit_price=li.unit_price,
                estimated_cost_usdc=li.estimated_cost_usdc,
                has_pricing_plan=li.has_pricing_plan,
            )
            for li in est.line_items
        ],
        estimated_total_usdc=est.estimated_total_usdc,
        currency=est.currency,
        notes=est.notes,
    )


async def estimate_cost(ctx: ToolContext, inp: EstimateCostInput) -> EstimateOutput:
    items = [
        {"usage_type": i.meter, "quantity": i.quantity, "unit_price_override": i.unit_price_override} for i in inp.items
    ]
    prices = _price_fields(inp.default_unit_price, inp.custom_pricing)
    return _estimate_output(await ctx.client.estimate_hypothetical(items=items, **prices))


class EstimateFromUsageInput(ToolInput):
    period_start: datetime = Field(description="Start of the period, ISO 8601 (e.g. 2026-11-01T00:00:00Z).")
    period_end: datetime = Field(description="End of the period, ISO 8601.")
    customer_id: CustomerId | None = None
    meters: list[Meter] | None = Field(default=None, max_length=50, description="Only these meters.")
    default_unit_price: DefaultUnitPrice = None
    include_charged_events: bool | None = Field(
        default=None, description="False: leave out usage that was charged. Drip's default is true."
    )
    custom_pricing: CustomPricing = None


async def estimate_from_usage(ctx: ToolContext, inp: EstimateFromUsageInput) -> EstimateOutput:
    if inp.period_end <= inp.period_start:
        raise InvalidInputError("period_end must be after period_start", details=[{"path": "period_end"}])
    est = await ctx.client.estimate_from_usage(
        period_start=inp.period_start.isoformat(),
        period_end=inp.period_end.isoformat(),
        customer_id=inp.customer_id,
        usage_types=inp.meters,
        include_charged_events=inp.include_charged_events,
        **_price_fields(inp.default_unit_price, inp.custom_pricing),
    )
    return _estimate_output(est)


def _track_ledger(inp: TrackUsageInput, out: TrackUsageOutput | None, error: DripError | None) -> list[LedgerEntry]:
    key = out.idempotency_key if out is not None else (error.idempotency_key if error else None)
    outcome = out.status if out is not None else "failed"
    customer = out.customer_id if out is not None and out.customer_id else inp.customer
    return [LedgerEntry("usage", customer, inp.meter, inp.quantity, None, key, outcome)]


def _batch_ledger(
    inp: TrackUsageBatchInput, out: TrackUsageBatchOutput | None, error: DripError | None
) -> list[LedgerEntry]:
    """One entry per event the batch settled (a batch refused whole wrote nothing)."""
    if out is None:
        return []
    return [
        LedgerEntry(
            "usage",
            inp.events[item.index].customer,
            inp.events[item.index].meter,
            inp.events[item.index].quantity,
            None,
            item.idempotency_key,
            item.status,
        )
        for item in out.results
    ]


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_track_usage",
        title="Track usage",
        description=(
            "Record usage for a customer on Drip's ledger (POST /usage/internal): tokens, API calls, compute "
            "seconds. No money moves; drip_charge bills. If Drip is unreachable the event is queued (status "
            "'queued') and delivered exactly once later: do not retry a queued event."
        ),
        toolset="usage",
        scope=KeyType.PUBLIC,
        input_model=TrackUsageInput,
        output_model=TrackUsageOutput,
        handler=track_usage,
        read_only=False,
        destructive=False,
        idempotent=False,
        durable=True,
        ledger=_track_ledger,
        core=True,
    ),
    ToolSpec(
        name="drip_track_usage_batch",
        title="Track usage (batch)",
        description=(
            f"Record up to {BATCH_LIMIT} usage events in one call, sent concurrently. Prefer it over many "
            "drip_track_usage calls. Ledger only; no money moves. Each result has its own idempotency_key: to "
            "retry failed items, resend only those with their keys. Reports progress when asked."
        ),
        toolset="usage",
        scope=KeyType.PUBLIC,
        input_model=TrackUsageBatchInput,
        output_model=TrackUsageBatchOutput,
        handler=track_usage_batch,
        read_only=False,
        destructive=False,
        idempotent=False,
        durable=True,
        ledger=_batch_ledger,
        core=True,
    ),
    ToolSpec(
        name="drip_list_meters",
        title="List meters",
        description=(
            "List the meters (pricing plans) usage can be tracked and charged against, with unit prices. "
            "Call it before drip_track_usage or drip_charge to pick a valid `meter`. Read-only."
        ),
        toolset="usage",
        scope=KeyType.PUBLIC,
        input_model=ListMetersInput,
        output_model=ListMetersOutput,
        handler=list_meters,
        read_only=True,
        destructive=False,
        idempotent=True,
        core=True,
    ),
    ToolSpec(
        name="drip_estimate_cost",
        title="Estimate cost (hypothetical)",
        description=(
            "Price hypothetical usage (meters and quantities) with current pricing plans, without recording or "
            "charging anything. Use it to answer 'what would N tokens cost?'. Read-only."
        ),
        toolset="usage",
        scope=KeyType.PUBLIC,
        input_model=EstimateCostInput,
        output_model=EstimateOutput,
        handler=estimate_cost,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="drip_estimate_from_usage",
        title="Estimate cost from recorded usage",
        description=(
            "Price the usage already recorded in a period (optionally for one customer or some meters). "
            "Nothing is charged. Read-only."
        ),
        toolset="usage",
        scope=KeyType.PUBLIC,
        input_model=EstimateFromUsageInput,
        output_model=EstimateOutput,
        handler=estimate_from_usage,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
)
