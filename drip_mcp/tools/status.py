"""Toolset ``status``: is Drip reachable, and what is this server allowed to do?"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from drip_mcp._version import __version__
from drip_mcp.api.durable import OutboxSender
from drip_mcp.errors import AuthenticationError, DripError, PermissionDeniedError
from drip_mcp.keys import KeyType
from drip_mcp.state.base import OutboxCounts
from drip_mcp.tools.base import BatchId, CustomerId, ToolInput, ToolOutput, ToolSpec
from drip_mcp.tools.context import ToolContext


class PingInput(ToolInput):
    include_tools: bool = Field(default=True, description="List the enabled tools (false: a shorter answer).")


class PingOutput(ToolOutput):
    ok: bool = Field(description="True when the Drip API answered healthy and accepted the key.")
    api_status: str
    latency_ms: float | None = None
    base_url: str
    key_type: str = Field(description="'public' (pk_) or 'secret' (sk_).")
    key_mode: str = Field(description="'test' or 'live'. Live charges move real money.")
    key: str = Field(description="The configured key, masked.")
    key_accepted: bool | None = Field(
        default=None,
        description="Whether Drip accepted the key for an authenticated read (None: not checked, API unreachable).",
    )
    sandbox: bool
    read_only: bool
    toolsets: list[str]
    tools: list[str] = Field(description="Tools this key and the operator's filters allow.")
    warnings: list[str] = Field(default_factory=list)
    spend_caps: list[str] = Field(default_factory=list, description="Operator caps on charges, if any.")
    confirm_charges: bool = False
    version: str = __version__
    # --- durable outbox (drip_mcp.api.outbox) ---
    outbox_pending: int | None = Field(
        default=None, description="Queued usage/run writes not yet delivered to Drip (None: no outbox)."
    )
    outbox_dead: int | None = Field(
        default=None, description="Queued writes Drip refused (dead letters): `drip-mcp outbox list --dead`."
    )


async def _check_key(ctx: ToolContext) -> tuple[bool | None, str]:
    """An authenticated read any key may make (one customer): (False, why) on 401/403, None if it fails otherwise."""
    try:
        await ctx.client.list_customers(limit=1)
    except (AuthenticationError, PermissionDeniedError) as exc:
        return False, f"key refused: {exc.status} {exc.code} (check DRIP_API_KEY and its mode)"
    except DripError:
        return None, ""
    return True, ""


async def _tenant_outbox_counts(ctx: ToolContext) -> OutboxCounts | None:
    """The tenant's rows of the client's outbox (None: no outbox)."""
    sender = ctx.client.durable
    return await sender.counts(tenant=ctx.tenant) if isinstance(sender, OutboxSender) else None


async def ping(ctx: ToolContext, inp: PingInput) -> PingOutput:
    started = time.perf_counter()
    try:
        health = await ctx.client.health()
        status, ok = health.status, health.status == "healthy"
    except DripError as exc:
        status, ok = f"unreachable: {exc.code}", False
    latency = round((time.perf_counter() - started) * 1000, 2)
    accepted, refusal = await _check_key(ctx) if ok else (None, "")
    if accepted is False:
        status, ok = refusal, False
    key = ctx.client.api_key
    warnings = []
    caps = ctx.services.guard.describe(await ctx.services.guard.spent(ctx.scope))
    if ctx.settings.max_quantity is not None:
        caps.append(f"max quantity {ctx.settings.max_quantity} per write")
    if key.is_live:
        active = "; ".join(caps) if caps else "none (consider --read-only or --max-charge-usdc)"
        warnings.append(
            f"LIVE key: drip_charge, drip_charge_async and drip_refund_charge move real money. Active caps: {active}."
        )
    counts = await _tenant_outbox_counts(ctx)
    if counts is not None and counts.dead:
        warnings.append(f"{counts.dead} queued write(s) were refused by Drip: see `drip-mcp outbox list --dead`.")
    return PingOutput(
        outbox_pending=counts.pending if counts else None,
        outbox_dead=counts.dead if counts else None,
        ok=ok,
        api_status=status,
        latency_ms=latency,
        base_url=ctx.client.base_url,
        key_type=key.type.value,
        key_mode=key.mode.value,
        key=key.masked,
        key_accepted=accepted,
        sandbox=ctx.settings.sandbox,
        read_only=ctx.settings.read_only,
        toolsets=list(ctx.settings.toolsets),
        tools=list(ctx.allowed_tools) if inp.include_tools else [],
        warnings=warnings,
        spend_caps=caps,
        confirm_charges=ctx.settings.confirm_charges,
    )


class SessionSummaryInput(ToolInput):
    customer_id: CustomerId | None = Field(default=None, description="Only this customer's entries and totals.")


class LedgerEntryOut(ToolOutput):
    kind: str
    customer_id: str
    meter: str
    quantity: str
    amount_usdc: str | None = None
    idempotency_key: str | None = None
    outcome: str
    at: str


class SessionSummaryOutput(ToolOutput):
    entries: list[LedgerEntryOut]
    totals_by_customer: dict[str, dict[str, Any]]
    total_charged_usdc: str
    budget_remaining_usdc: str | None = None


async def session_summary(ctx: ToolContext, inp: SessionSummaryInput) -> SessionSummaryOutput:
    remaining = await ctx.services.guard.remaining(ctx.scope)
    summary = await ctx.services.ledger.summary(ctx.scope)
    if inp.customer_id is not None:
        summary["entries"] = [e for e in summary["entries"] if e["customer_id"] == inp.customer_id]
        mine = summary["totals_by_customer"].get(inp.customer_id)
        summary["totals_by_customer"] = {inp.customer_id: mine} if mine else {}
        summary["total_charged_usdc"] = mine["charged_usdc"] if mine else "0.000000"
    return SessionSummaryOutput(**summary, budget_remaining_usdc=None if remaining is None else f"{remaining:.6f}")


class GetBatchInput(ToolInput):
    batch_id: BatchId


class BatchEvent(ToolOutput):
    index: int | None = Field(description="The event's position in the batch (None: a key the caller chose).")
    idempotency_key: str
    status: str = Field(description="delivered, queued (will be retried) or failed (Drip refused it).")
    error_code: str | None = None


class GetBatchOutput(ToolOutput):
    batch_id: str
    delivered: int
    queued: int
    failed: int
    events: list[BatchEvent] = Field(description="The batch's stored writes, in the order they were made.")


_BATCH_STATUS = {"sent": "delivered", "pending": "queued", "dead": "failed"}


async def get_batch(ctx: ToolContext, inp: GetBatchInput) -> GetBatchOutput:
    """A batch's writes as the durable outbox holds them: also those of a batch the client cancelled."""
    sender = ctx.client.durable
    if not isinstance(sender, OutboxSender):
        raise DripError(
            "This server keeps no outbox, so batches cannot be looked up.",
            code="OUTBOX_DISABLED",
            status=409,
            hint="Each batch result lists its events; run drip-mcp with its default outbox to look batches up.",
        )
    rows = await sender.with_key_prefix(f"{inp.batch_id}-", tenant=ctx.tenant)
    if not rows:
        raise DripError(
            f"No writes of batch {inp.batch_id} are stored here.",
            code="NOT_FOUND",
            status=404,
            hint="Delivered writes are kept for 7 days; events given their own idempotency_key are not counted.",
        )
    events = [
        BatchEvent(
            index=_event_index(row.idempotency_key),
            idempotency_key=row.idempotency_key,
            status=_BATCH_STATUS[row.status],
            error_code=row.error_code if row.status == "dead" else None,
        )
        for row in rows
    ]
    events.sort(key=lambda e: -1 if e.index is None else e.index)
    return GetBatchOutput(
        batch_id=inp.batch_id,
        delivered=sum(e.status == "delivered" for e in events),
        queued=sum(e.status == "queued" for e in events),
        failed=sum(e.status == "failed" for e in events),
        events=events,
    )


def _event_index(key: str) -> int | None:
    suffix = key.rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else None


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_ping",
        title="Check Drip connection",
        description=(
            "Check that the Drip API is reachable and see how this server is configured: key type (public or "
            "secret) and mode (test or live), sandbox or not, and which tools are enabled. Call it first when "
            "unsure. Read-only."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=PingInput,
        output_model=PingOutput,
        handler=ping,
        read_only=True,
        destructive=False,
        idempotent=True,
        core=True,
    ),
    ToolSpec(
        name="drip_session_summary",
        title="Session summary",
        description=(
            "List what this server process has tracked and charged so far (customer, meter, quantity, amount, "
            "idempotency key, time, outcome) with totals per customer and the remaining session budget. Local "
            "only: no request to Drip. Read-only."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=SessionSummaryInput,
        output_model=SessionSummaryOutput,
        handler=session_summary,
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
    ),
    ToolSpec(
        name="drip_get_batch",
        title="Get batch",
        description=(
            "Where each write of a drip_track_usage_batch stands (delivered, queued, failed), from the local "
            "outbox; works after a cancelled batch too. Read-only."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=GetBatchInput,
        output_model=GetBatchOutput,
        handler=get_batch,
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
    ),
)
