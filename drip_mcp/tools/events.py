"""Toolset ``events``: read the execution-events ledger (usage writes and run events) and its traces.

Every ``/usage*`` write and every run event appears here as an event; a trace follows an event's
parents, children and retries, or every event that shares a correlation id. Read-only, public key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.tools.base import CustomerId, ToolInput, ToolSpec
from drip_mcp.tools.declare import operation

__all__ = ["TOOLS"]

_ID = r"^[A-Za-z0-9_.:-]+$"
EventId = Annotated[str, Field(min_length=1, max_length=255, pattern=_ID, description="Event id (drip_list_events).")]


class ListEventsInput(ToolInput):
    customer_id: CustomerId | None = None
    run_id: Annotated[str | None, Field(min_length=1, max_length=255, pattern=_ID)] = None
    event_type: Annotated[str | None, Field(min_length=1, max_length=100)] = Field(
        default=None, description="USAGE for usage writes, LLM_INFERENCE, TOOL_CALL, ..., or a run event's type."
    )
    outcome: Literal["PENDING", "SUCCEEDED", "FAILED", "SKIPPED", "RETRIED", "TIMEOUT", "CANCELLED"] | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class EventRef(ToolInput):
    event_id: EventId


class TraceRef(ToolInput):
    correlation_id: Annotated[str, Field(min_length=1, max_length=255, pattern=_ID)] = Field(
        description="The correlation_id that runs and events were recorded with."
    )


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    operation(
        "drip_list_events",
        "List events",
        "List ledger events (usage writes, run events), newest first; filter by customer, run, type, outcome. "
        "Read-only.",
        toolset="events",
        endpoint="list_events",
        input_model=ListEventsInput,
    ),
    operation(
        "drip_get_event",
        "Get event",
        "Get one ledger event with its child events and retries. Read-only.",
        toolset="events",
        endpoint="get_event",
        input_model=EventRef,
    ),
    operation(
        "drip_get_event_trace",
        "Get event trace",
        "Trace one event: its ancestors, children, retry chain and anomalies (failures, retries). Read-only.",
        toolset="events",
        endpoint="get_event_trace",
        input_model=EventRef,
    ),
    operation(
        "drip_get_trace",
        "Get trace by correlation id",
        "Get every event recorded with one correlation_id, in order, with anomalies. Read-only.",
        toolset="events",
        endpoint="get_trace",
        input_model=TraceRef,
    ),
)
