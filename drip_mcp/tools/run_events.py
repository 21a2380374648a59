"""A run event as the run tools take it (`RunEvent`) and send it (`wire_event`): shared vocabulary.

Keys may be snake_case or camelCase; unknown keys are folded into the event's metadata, which goes
through the metadata policy like every other write.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, Field

from drip_mcp.tools.base import CostUnits, EventQuantity, Metadata, ToolInput
from drip_mcp.tools.context import ToolContext

__all__ = ["BATCH_LIMIT", "EventType", "LinkId", "RunEvent", "RunId", "wire_event"]

RunId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$", description="Run id.")]
LinkId = Annotated[str | None, Field(max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""An optional linking id (parent run or event, correlation, span); the pattern makes it non-empty. No
description and no minLength, to keep the core tools/list short."""
EventType = Annotated[str, Field(min_length=1, max_length=100, description="What happened, e.g. 'llm_call'.")]
BATCH_LIMIT = 500


def _alias(snake: str, camel: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(snake, camel))


class RunEvent(ToolInput):
    """One event. Keys may be snake_case or camelCase; unknown keys are kept in metadata (after redaction)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, populate_by_name=True, defer_build=True)

    event_type: EventType = Field(validation_alias=AliasChoices("event_type", "eventType"))
    quantity: EventQuantity = None
    units: Annotated[str | None, Field(max_length=50)] = None
    description: Annotated[str | None, Field(max_length=500)] = None
    cost_units: CostUnits = _alias("cost_units", "costUnits")
    metadata: Metadata = None
    idempotency_key: Annotated[str | None, Field(min_length=1, max_length=128)] = _alias(
        "idempotency_key", "idempotencyKey"
    )
    run_id: RunId | None = _alias("run_id", "runId")
    correlation_id: LinkId = _alias("correlation_id", "correlationId")
    parent_event_id: LinkId = _alias("parent_event_id", "parentEventId")
    span_id: LinkId = _alias("span_id", "spanId")


def wire_event(ctx: ToolContext, event: RunEvent, path: str) -> dict[str, Any]:
    """camelCase for Drip; unknown keys folded into metadata, all through the metadata policy."""
    extras = dict(event.model_extra or {})
    metadata = {**extras, **(event.metadata or {})} if extras else event.metadata
    fields = {
        "eventType": event.event_type,
        "quantity": event.quantity,
        "units": event.units,
        "description": event.description,
        "costUnits": event.cost_units,
        "metadata": ctx.clean_metadata(metadata, path=f"{path}.metadata"),
        "idempotencyKey": event.idempotency_key,
        "runId": event.run_id,
        "correlationId": event.correlation_id,
        "parentEventId": event.parent_event_id,
        "spanId": event.span_id,
    }
    return {k: v for k, v in fields.items() if v is not None}
