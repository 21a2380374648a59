"""The catalogue tools of the ``core`` surface: find any operation, and call it by name.

``core`` lists a few tools for what agents do most; every other operation stays one search away.
`drip_find_operations` searches the operations this caller may use (key scope, operator filters and
read-only mode already applied) and returns each with its input schema; `drip_call_operation` calls one
by name, through exactly the checks, money safety, redaction, idempotency and outbox of a direct call.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ConfigDict, Field, WithJsonSchema

from drip_mcp.errors import DripError
from drip_mcp.keys import KeyType
from drip_mcp.portable_schema import FREE_FORM
from drip_mcp.settings import TOOLSETS
from drip_mcp.tools.base import ToolInput, ToolOutput, ToolSpec
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.listing import Operation

__all__ = ["CALL_OPERATION", "FIND_OPERATIONS", "TOOLS", "search_score"]

FIND_OPERATIONS = "drip_find_operations"
CALL_OPERATION = "drip_call_operation"
MAX_RESULTS = 20


class FindOperationsInput(ToolInput):
    query: Annotated[str | None, Field(max_length=200)] = Field(
        default=None, description="Words to look for, e.g. 'refund charge' or 'cancel subscription'."
    )
    toolset: Annotated[str | None, Field(max_length=40)] = Field(
        default=None, description=f"Only this toolset: {', '.join(TOOLSETS)}."
    )
    limit: int = Field(default=5, ge=1, le=MAX_RESULTS, description="At most this many operations.")


class OperationInfo(ToolOutput):
    name: str = Field(description="Pass as `operation` to drip_call_operation (or call the tool directly).")
    title: str
    description: str
    toolset: str
    key_type: str = Field(description="'public' (pk_ or sk_ keys) or 'secret' (sk_ only).")
    read_only: bool
    destructive: bool
    input_schema: dict[str, Any] = Field(description="The JSON schema of `arguments`.")


class FindOperationsOutput(ToolOutput):
    operations: list[OperationInfo]
    total_matches: int = Field(description="How many operations matched; raise `limit` or narrow the query.")


def search_score(spec: Operation, words: list[str]) -> int:
    """How well `spec` matches the query words: name hits count most, then title, then description."""
    name, title, text = spec.name.lower(), spec.title.lower(), spec.description.lower()
    score = 0
    for word in words:
        if word in name:
            score += 5
        if word in title:
            score += 3
        if word in text:
            score += 1
    return score


async def find_operations(ctx: ToolContext, inp: FindOperationsInput) -> FindOperationsOutput:
    if ctx.catalogue is None:
        raise DripError("The operation catalogue is not available here.", code="INTERNAL_ERROR")
    found = list(ctx.catalogue.find(inp.query, inp.toolset))
    return FindOperationsOutput(
        operations=[
            OperationInfo(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                toolset=spec.toolset,
                key_type=spec.scope.value,
                read_only=spec.read_only,
                destructive=spec.destructive,
                input_schema=spec.input_schema,
            )
            for spec in found[: inp.limit]
        ],
        total_matches=len(found),
    )


class CallOperationInput(ToolInput):
    operation: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^drip_[a-z0-9_]+$")] = Field(
        description="An operation name from drip_find_operations."
    )
    arguments: Annotated[
        dict[str, Any],
        WithJsonSchema({"type": "object", FREE_FORM: True}),
    ] = Field(default_factory=dict, description="The operation's arguments, as its input_schema describes.")


class CallOperationOutput(ToolOutput):
    """Free-form: the named operation's own result."""

    model_config = ConfigDict(extra="allow", defer_build=True)


async def call_operation(ctx: ToolContext, inp: CallOperationInput) -> CallToolResult | InputRequiredResult:
    if ctx.catalogue is None:
        raise DripError("The operation catalogue is not available here.", code="INTERNAL_ERROR")
    if inp.operation in (FIND_OPERATIONS, CALL_OPERATION):
        raise DripError(
            f"{inp.operation} is a catalogue tool, not an operation.",
            code="UNKNOWN_OPERATION",
            status=404,
            hint="Call drip_find_operations to find the operation you need.",
        )
    return await ctx.catalogue.call(inp.operation, inp.arguments)


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name=FIND_OPERATIONS,
        title="Find Drip operations",
        description=(
            "Search every Drip operation this server allows you (subscriptions, entitlements, refunds, events, "
            "contracts, webhooks, …) beyond the tools listed. Returns names, descriptions and input schemas; "
            "then call one with drip_call_operation."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=FindOperationsInput,
        output_model=FindOperationsOutput,
        handler=find_operations,
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
        core=True,
    ),
    ToolSpec(
        name=CALL_OPERATION,
        title="Call a Drip operation",
        description=(
            "Call any operation found with drip_find_operations: `arguments` must match its input_schema. "
            "Returns the operation's own result or structured error, with the same checks as a direct call."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=CallOperationInput,
        output_model=CallOperationOutput,
        handler=call_operation,
        read_only=False,
        destructive=True,
        idempotent=False,
        core=True,
    ),
)
