"""Toolset ``runs``, reads and workflows: find runs, read a run and its timeline, manage workflows.

Recording runs and their events is in `drip_mcp.tools.runs`. Nothing here moves money.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.api.models import RunStatus
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    MutationResult,
    ToolInput,
    ToolOutput,
    ToolSpec,
    from_wire,
    spec_factory,
)
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.declare import operation
from drip_mcp.tools.run_events import RunId

_ID = r"^[A-Za-z0-9_.:-]+$"
WorkflowId = Annotated[
    str, Field(min_length=1, max_length=255, pattern=_ID, description="Workflow id (drip_list_workflows).")
]
Slug = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_-]+$")]

# --- reads ---------------------------------------------------------------------------------------


class RunRef(ToolInput):
    run_id: RunId


class RunOutput(ToolOutput):
    run_id: str
    customer_id: str
    workflow_id: str
    workflow_name: str | None = None
    status: RunStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    error_message: str | None = None
    event_count: int = 0
    total_quantity: Decimal | None = None
    total_cost_units: Decimal | None = None


async def get_run(ctx: ToolContext, inp: RunRef) -> RunOutput:
    r = await ctx.client.get_run(inp.run_id)
    return RunOutput(
        run_id=r.id,
        customer_id=r.customer_id,
        workflow_id=r.workflow_id,
        workflow_name=r.workflow_name,
        status=r.status,
        started_at=r.started_at,
        ended_at=r.ended_at,
        duration_ms=r.duration_ms,
        error_message=r.error_message,
        event_count=r.totals.event_count,
        total_quantity=r.totals.total_quantity,
        total_cost_units=r.totals.total_cost_units,
    )


class TimelineInput(ToolInput):
    run_id: RunId
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Annotated[str | None, Field(max_length=500, description="next_cursor from the previous page.")] = None


class TimelineEventOut(ToolOutput):
    id: str
    event_type: str
    outcome: str | None = None
    description: str | None = None
    timestamp: str | None = None
    cost_usdc: str | None = None
    metadata: dict[str, Any] | None = None


class TimelineOutput(ToolOutput):
    run_id: str
    workflow_name: str | None = None
    status: RunStatus
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    events: list[TimelineEventOut]
    summary: dict[str, Any] = Field(default_factory=dict)
    has_more: bool = False
    next_cursor: str | None = None


async def get_run_timeline(ctx: ToolContext, inp: TimelineInput) -> TimelineOutput:
    timeline = await ctx.client.get_run_timeline(inp.run_id, limit=inp.limit, cursor=inp.cursor)
    events = [from_wire(TimelineEventOut, event) for event in timeline.events]
    return from_wire(TimelineOutput, timeline, events=events)


class CreateWorkflowInput(ToolInput):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    slug: Slug
    product_surface: Literal["API", "RPC", "WEBHOOK", "AGENT", "PIPELINE", "CUSTOM"] = "AGENT"
    description: Annotated[str | None, Field(max_length=1000)] = None
    idempotency_key: IdempotencyKey = None


class WorkflowInfo(ToolOutput):
    id: str
    name: str
    slug: str
    product_surface: str | None = None
    description: str | None = None
    is_active: bool = True
    created_at: str | None = None


class CreateWorkflowOutput(MutationResult):
    workflow: WorkflowInfo


async def create_workflow(ctx: ToolContext, inp: CreateWorkflowInput) -> CreateWorkflowOutput:
    reply = await ctx.client.create_workflow(
        name=inp.name,
        slug=inp.slug,
        product_surface=inp.product_surface,
        description=inp.description,
        idempotency_key=inp.idempotency_key,
    )
    return CreateWorkflowOutput(workflow=from_wire(WorkflowInfo, reply.data), idempotency_key=reply.idempotency_key)


class ListWorkflowsInput(ToolInput):
    limit: int = Field(default=50, ge=1, le=100)


class ListWorkflowsOutput(ToolOutput):
    workflows: list[WorkflowInfo]
    count: int


async def list_workflows(ctx: ToolContext, inp: ListWorkflowsInput) -> ListWorkflowsOutput:
    page = await ctx.client.list_workflows(limit=inp.limit)
    return ListWorkflowsOutput(workflows=[from_wire(WorkflowInfo, w) for w in page.data], count=page.count)


class ListRunsInput(ToolInput):
    customer_id: CustomerId | None = None
    workflow_id: WorkflowId | None = None
    status: RunStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)


class WorkflowIdRef(ToolInput):
    workflow_id: WorkflowId


class UpdateWorkflowInput(ToolInput):
    workflow_id: WorkflowId
    name: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    description: Annotated[str | None, Field(max_length=1000)] = None
    is_active: bool | None = Field(default=None, description="false retires the workflow.")
    idempotency_key: IdempotencyKey = None


_spec = spec_factory("runs")


_READ: dict[str, Any] = {"read_only": True, "destructive": False, "idempotent": True}

TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    operation(
        "drip_list_runs",
        "List runs",
        "List runs, newest first, by customer, workflow or status, with event counts and cost totals. Read-only.",
        toolset="runs",
        endpoint="list_runs",
        input_model=ListRunsInput,
    ),
    _spec(
        "drip_get_run",
        "Get run",
        "Get a run's status, duration and totals. Read-only.",
        get_run,
        RunRef,
        RunOutput,
        **_READ,
    ),
    _spec(
        "drip_get_run_timeline",
        "Get run timeline",
        "Get a run's events in order with a summary; page with cursor/next_cursor. Read-only.",
        get_run_timeline,
        TimelineInput,
        TimelineOutput,
        **_READ,
    ),
    _spec(
        "drip_create_workflow",
        "Create workflow",
        "Create a workflow (a kind of agent job that runs belong to). Usually unnecessary: run tools create "
        "unknown slugs. Fails with CONFLICT if the slug exists.",
        create_workflow,
        CreateWorkflowInput,
        CreateWorkflowOutput,
        read_only=False,
        destructive=False,
        idempotent=True,
    ),
    _spec(
        "drip_list_workflows",
        "List workflows",
        "List workflows with their slugs and ids. Read-only.",
        list_workflows,
        ListWorkflowsInput,
        ListWorkflowsOutput,
        **_READ,
    ),
    operation(
        "drip_get_workflow",
        "Get workflow",
        "Get one workflow by id: name, slug, product surface, active flag. Read-only.",
        toolset="runs",
        endpoint="get_workflow",
        input_model=WorkflowIdRef,
    ),
    operation(
        "drip_update_workflow",
        "Update workflow",
        "Rename a workflow, change its description, or retire it (is_active: false). The slug never changes.",
        toolset="runs",
        endpoint="update_workflow",
        input_model=UpdateWorkflowInput,
        destructive=True,
        idempotent=True,
    ),
)
