"""Toolset ``runs``: record agent runs and their events (execution ledger, no billing).

Reads of runs and workflows are in `drip_mcp.tools.workflows`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.api.models import EndRunResult, RunDetails, RunStatus
from drip_mcp.api.outbox import Queued
from drip_mcp.api.wire import new_idempotency_key
from drip_mcp.errors import ConflictError, InvalidInputError
from drip_mcp.tools.base import (
    CostUnits,
    CustomerId,
    EventQuantity,
    IdempotencyKey,
    Metadata,
    MutationResult,
    ToolInput,
    ToolSpec,
    spec_factory,
)
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.run_events import BATCH_LIMIT, EventType, LinkId, RunEvent, RunId, wire_event

TerminalStatus = Literal["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
WorkflowRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Workflow slug (e.g. 'research_agent'; created if unknown) or workflow id.",
    ),
]
# --- record a whole run ------------------------------------------------------------------------


class RecordRunInput(ToolInput):
    customer_id: CustomerId
    workflow: WorkflowRef
    events: list[RunEvent] = Field(default_factory=list, max_length=BATCH_LIMIT)
    status: TerminalStatus = "COMPLETED"
    error_message: Annotated[str | None, Field(max_length=2000)] = None
    error_code: Annotated[str | None, Field(max_length=100)] = None
    external_run_id: Annotated[
        str | None, Field(max_length=255, description="Your own run id; a second run with it is refused.")
    ] = None
    correlation_id: Annotated[str | None, Field(max_length=255)] = None
    parent_run_id: LinkId = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class RecordRunOutput(MutationResult):
    status: Literal["recorded", "queued"] = "recorded"
    run_id: str | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    run_status: RunStatus | None = None
    duration_ms: int | None = None
    events_created: int = 0
    events_duplicates: int = 0
    summary: str | None = None


def run_keys(inp: RecordRunInput | StartRunInput, prefix: str) -> tuple[str, str]:
    """The idempotency key and the external run id for a run write.

    Drip deduplicates runs by ``externalRunId``, not by ``idempotencyKey``. Without a caller's
    external_run_id, one derived from the idempotency key makes a retried (or replayed) write
    find the run it already created instead of creating a second one.
    """
    key = inp.idempotency_key or new_idempotency_key(prefix)
    return key, inp.external_run_id or f"idem_{key}"


async def record_run(ctx: ToolContext, inp: RecordRunInput) -> RecordRunOutput:
    key, external_run_id = run_keys(inp, "rec")
    events = []
    for i, event in enumerate(inp.events):
        wire = wire_event(ctx, event, f"events[{i}]")
        wire.setdefault("idempotencyKey", f"{key}:{i}")
        events.append(wire)
    try:
        reply = await ctx.client.record_run(
            customer_id=inp.customer_id,
            workflow=inp.workflow,
            events=events,
            status=inp.status,
            error_message=inp.error_message,
            error_code=inp.error_code,
            external_run_id=external_run_id,
            correlation_id=inp.correlation_id,
            parent_run_id=inp.parent_run_id,
            metadata=ctx.clean_metadata(inp.metadata),
            idempotency_key=key,
            durable=ctx.durable,
        )
    except Queued as queued:
        return RecordRunOutput(status="queued", idempotency_key=queued.idempotency_key, redacted_paths=ctx.redacted)
    except ConflictError as exc:
        run = await _existing_run(ctx, exc)
        return RecordRunOutput(
            run_id=run.id,
            workflow_id=run.workflow_id,
            workflow_name=run.workflow_name,
            run_status=run.status,
            duration_ms=run.duration_ms,
            events_duplicates=len(events),
            summary="This run was already recorded; nothing new was written.",
            idempotency_key=key,
            is_duplicate=True,
            redacted_paths=ctx.redacted,
        )
    r = reply.data
    return RecordRunOutput(
        run_id=r.run.id,
        workflow_id=r.run.workflow_id,
        workflow_name=r.run.workflow_name,
        run_status=r.run.status,
        duration_ms=r.run.duration_ms,
        events_created=r.events.created,
        events_duplicates=r.events.duplicates,
        summary=r.summary,
        idempotency_key=reply.idempotency_key,
        is_duplicate=r.events.created == 0 and r.events.duplicates > 0,
        redacted_paths=ctx.redacted,
    )


async def _existing_run(ctx: ToolContext, exc: ConflictError) -> RunDetails:
    """The run a duplicate ``externalRunId`` points at; re-raise when Drip did not say which."""
    if exc.code != "DUPLICATE_RUN" or exc.existing_id is None:
        raise exc
    return await ctx.client.get_run(exc.existing_id)


# --- step by step: start, events, end ----------------------------------------------------------


class StartRunInput(ToolInput):
    customer_id: CustomerId
    workflow: WorkflowRef
    external_run_id: Annotated[str | None, Field(max_length=255)] = None
    correlation_id: Annotated[str | None, Field(max_length=255)] = None
    parent_run_id: LinkId = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class StartRunOutput(MutationResult):
    run_id: str = Field(description="Pass to drip_emit_event and drip_end_run.")
    workflow_id: str
    workflow_name: str | None = None
    run_status: RunStatus


def _title(slug: str) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[_-]+", slug) if part) or slug


async def resolve_workflow(ctx: ToolContext, ref: str) -> str:
    """A workflow id for `ref` (id or slug); an unknown slug is created, as Drip's SDKs do."""
    page = await ctx.client.list_workflows(limit=100)
    for wf in page.data:
        if ref in (wf.id, wf.slug):
            return wf.id
    slug = ref.lower()
    reply = await ctx.client.create_workflow(name=_title(slug), slug=slug, product_surface="AGENT")
    return reply.data.id


async def start_run(ctx: ToolContext, inp: StartRunInput) -> StartRunOutput:
    key, external_run_id = run_keys(inp, "run")
    metadata = ctx.clean_metadata(inp.metadata)  # before anything is sent, workflow creation included
    workflow_id = await resolve_workflow(ctx, inp.workflow)
    try:
        reply = await ctx.client.start_run(
            customer_id=inp.customer_id,
            workflow_id=workflow_id,
            external_run_id=external_run_id,
            correlation_id=inp.correlation_id,
            parent_run_id=inp.parent_run_id,
            metadata=metadata,
            idempotency_key=key,
        )
    except ConflictError as exc:
        run = await _existing_run(ctx, exc)
        return StartRunOutput(
            run_id=run.id,
            workflow_id=run.workflow_id,
            workflow_name=run.workflow_name,
            run_status=run.status,
            idempotency_key=key,
            is_duplicate=True,
            redacted_paths=ctx.redacted,
        )
    r = reply.data
    return StartRunOutput(
        run_id=r.id,
        workflow_id=r.workflow_id,
        workflow_name=r.workflow_name,
        run_status=r.status,
        idempotency_key=reply.idempotency_key,
        redacted_paths=ctx.redacted,
    )


class EmitEventInput(ToolInput):
    run_id: RunId
    event_type: EventType
    quantity: EventQuantity = None
    units: Annotated[str | None, Field(max_length=50)] = None
    description: Annotated[str | None, Field(max_length=500)] = None
    cost_units: CostUnits = None
    correlation_id: LinkId = None
    parent_event_id: LinkId = None
    span_id: LinkId = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class EmitEventOutput(MutationResult):
    status: Literal["recorded", "queued"] = "recorded"
    event_id: str | None = None
    run_id: str
    event_type: str


async def emit_event(ctx: ToolContext, inp: EmitEventInput) -> EmitEventOutput:
    try:
        reply = await ctx.client.emit_event(
            run_id=inp.run_id,
            event_type=inp.event_type,
            quantity=inp.quantity,
            units=inp.units,
            description=inp.description,
            cost_units=inp.cost_units,
            correlation_id=inp.correlation_id,
            parent_event_id=inp.parent_event_id,
            span_id=inp.span_id,
            metadata=ctx.clean_metadata(inp.metadata),
            idempotency_key=inp.idempotency_key,
            durable=ctx.durable,
        )
    except Queued as queued:
        return EmitEventOutput(
            status="queued",
            run_id=inp.run_id,
            event_type=inp.event_type,
            idempotency_key=queued.idempotency_key,
            redacted_paths=ctx.redacted,
        )
    return EmitEventOutput(
        event_id=reply.data.id,
        run_id=reply.data.run_id,
        event_type=reply.data.event_type,
        idempotency_key=reply.idempotency_key,
        is_duplicate=reply.data.is_duplicate,
        redacted_paths=ctx.redacted,
    )


class EmitEventsBatchInput(ToolInput):
    run_id: RunId | None = Field(default=None, description="Default run for events that name none.")
    events: list[RunEvent] = Field(min_length=1, max_length=BATCH_LIMIT)
    idempotency_key: IdempotencyKey = None


class EmitEventsBatchOutput(MutationResult):
    status: Literal["recorded", "queued"] = "recorded"
    created: int = 0
    duplicates: int = 0
    event_ids: list[str] = Field(default_factory=list)


async def emit_events_batch(ctx: ToolContext, inp: EmitEventsBatchInput) -> EmitEventsBatchOutput:
    batch_key = inp.idempotency_key or new_idempotency_key("evtb")
    events = []
    for i, event in enumerate(inp.events):
        wire = wire_event(ctx, event, f"events[{i}]")
        wire.setdefault("runId", inp.run_id)
        if wire["runId"] is None:
            raise InvalidInputError(f"events[{i}].run_id is required (or pass run_id for the whole batch)")
        # Per-event keys derive from the batch key, so a retried batch deduplicates event by event.
        wire.setdefault("idempotencyKey", f"{batch_key}:{i}")
        events.append(wire)
    try:
        reply = await ctx.client.emit_events_batch(events=events, idempotency_key=batch_key, durable=ctx.durable)
    except Queued as queued:
        return EmitEventsBatchOutput(
            status="queued", idempotency_key=queued.idempotency_key, redacted_paths=ctx.redacted
        )
    r = reply.data
    return EmitEventsBatchOutput(
        created=r.created,
        duplicates=r.duplicates,
        event_ids=[e.id for e in r.events],
        idempotency_key=reply.idempotency_key,
        is_duplicate=r.created == 0 and r.duplicates > 0,
        redacted_paths=ctx.redacted,
    )


class EndRunInput(ToolInput):
    run_id: RunId
    status: TerminalStatus
    error_message: Annotated[str | None, Field(max_length=2000)] = None
    error_code: Annotated[str | None, Field(max_length=100)] = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class EndRunOutput(MutationResult):
    status: Literal["recorded", "queued"] = "recorded"
    run_id: str
    run_status: RunStatus | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    event_count: int = 0
    total_cost_units: Decimal | None = None


def _end_output(
    run_id: str, r: EndRunResult | None, key: str, ctx: ToolContext, *, duplicate: bool = False
) -> EndRunOutput:
    return EndRunOutput(
        run_id=run_id,
        run_status=r.status if r else None,
        ended_at=r.ended_at if r else None,
        duration_ms=r.duration_ms if r else None,
        event_count=r.event_count if r else 0,
        total_cost_units=r.total_cost_units if r else None,
        idempotency_key=key,
        status="recorded" if r else "queued",
        is_duplicate=duplicate,
        redacted_paths=ctx.redacted,
    )


async def end_run(ctx: ToolContext, inp: EndRunInput) -> EndRunOutput:
    try:
        reply = await ctx.client.end_run(
            inp.run_id,
            status=inp.status,
            error_message=inp.error_message,
            error_code=inp.error_code,
            metadata=ctx.clean_metadata(inp.metadata),
            idempotency_key=inp.idempotency_key,
            durable=ctx.durable,
        )
    except Queued as queued:
        return _end_output(inp.run_id, None, queued.idempotency_key, ctx)
    except ConflictError as exc:
        # Ended already: with the same status that is this call's own earlier attempt (or an equivalent
        # one), so report it as a duplicate; with another status it is a real conflict.
        run = await ctx.client.get_run(inp.run_id)
        if run.status != inp.status or exc.idempotency_key is None:
            raise
        ended = EndRunResult(
            id=run.id,
            status=run.status,
            started_at=run.started_at,
            ended_at=run.ended_at,
            duration_ms=run.duration_ms,
            event_count=run.totals.event_count,
            total_cost_units=run.totals.total_cost_units,
        )
        return _end_output(inp.run_id, ended, exc.idempotency_key, ctx, duplicate=True)
    return _end_output(inp.run_id, reply.data, reply.idempotency_key, ctx)


_LEDGER = " Execution ledger only: no money moves."


_spec = spec_factory("runs")


_WRITE = {"read_only": False, "destructive": False, "idempotent": False}

TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    _spec(
        "drip_record_run",
        "Record a finished run",
        "Record a whole agent run in one call: workflow (slug or id; unknown slugs are created), its events "
        "and the final status. Use it when the run is over; to record as you go, use drip_start_run, "
        "drip_emit_event and drip_end_run. Extra event keys go into the event's metadata." + _LEDGER,
        record_run,
        RecordRunInput,
        RecordRunOutput,
        durable=True,
        **_WRITE,
        core=True,
    ),
    _spec(
        "drip_start_run",
        "Start a run",
        "Start recording an agent run for a customer under a workflow (slug or id; unknown slugs are created). "
        "Returns run_id for drip_emit_event and drip_end_run." + _LEDGER,
        start_run,
        StartRunInput,
        StartRunOutput,
        **_WRITE,
        core=True,
    ),
    _spec(
        "drip_emit_event",
        "Emit a run event",
        "Record one event (an LLM call, a tool call, a step) in a running run." + _LEDGER,
        emit_event,
        EmitEventInput,
        EmitEventOutput,
        durable=True,
        **_WRITE,
        core=True,
    ),
    _spec(
        "drip_emit_events_batch",
        "Emit run events (batch)",
        f"Record up to {BATCH_LIMIT} run events in one call. Event keys may be snake_case or camelCase; extra "
        "keys go into metadata. Each event gets a key derived from the batch key, so a retried batch "
        "records every event once." + _LEDGER,
        emit_events_batch,
        EmitEventsBatchInput,
        EmitEventsBatchOutput,
        durable=True,
        **_WRITE,
    ),
    _spec(
        "drip_end_run",
        "End a run",
        "Finish a run with COMPLETED, FAILED, CANCELLED or TIMEOUT; Drip stamps the end time and totals. "
        "Ending it again with the same status reports a duplicate; with another status it is a CONFLICT "
        "error. Changes nothing either way." + _LEDGER,
        end_run,
        EndRunInput,
        EndRunOutput,
        durable=True,
        read_only=False,
        destructive=False,
        idempotent=True,
        core=True,
    ),
)
