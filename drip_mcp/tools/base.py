"""What a tool is: `ToolSpec`, declared once as data, plus the shared input vocabulary.

A `ToolSpec` carries everything the server, the scope checks and ``tools.json``
need: name, title, a description written for a model, the pydantic input model
(the only source of the input schema), the output model, the toolset, the key
type it needs, explicit MCP annotations, the handler, and the flags and hooks
the machinery reads: ``durable`` (its writes go through the outbox),
``moves_money`` (named in live-key warnings) and ``ledger`` (what the session
ledger records for a call). The server never learns about a tool any other way.

The operator's ``--max-quantity`` is enforced where quantities are validated:
`Quantity` and `EventQuantity` read it from the validation context
(`QUANTITY_LIMIT`), so every usage write is bounded, nested events included.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from mcp_types import Tool as MCPTool
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from drip_mcp._version import __version__
from drip_mcp.errors import DripError
from drip_mcp.keys import KeyType
from drip_mcp.portable_schema import portable_input_schema
from drip_mcp.safety.ledger import LedgerEntry
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.listing import listed_tool

__all__ = [
    "BATCH_ID_PATTERN",
    "NEEDS_SECRET_KEY",
    "QUANTITY_LIMIT",
    "BatchId",
    "CostUnits",
    "CustomerId",
    "EventQuantity",
    "IdempotencyKey",
    "Metadata",
    "Meter",
    "MutationResult",
    "PositiveQuantity",
    "Quantity",
    "ToolInput",
    "ToolOutput",
    "ToolSpec",
    "UsdcAmount",
    "batch_event_key",
    "from_wire",
    "new_batch_id",
    "spec_factory",
]


class ToolInput(BaseModel):
    """Base for tool arguments: unknown fields are errors, NaN and infinities are refused.

    Models are built on first use (``defer_build``): a session pays only for the tools it calls.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True, defer_build=True)


class ToolOutput(BaseModel):
    """Base for tool results (snake_case, money as 6-decimal strings)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


@functools.cache
def shipped_manifest() -> dict[str, dict[str, Any]]:
    """The tools of the ``tools.json`` generated for this version, by name; empty when there is none.

    The wheel carries it as ``drip_mcp/tools.json``; a source checkout has it at the repository root.
    It is generated from this registry and checked by ``drip-mcp tools --check`` in CI and a test;
    reading it saves building ~50 JSON schemas at every start.
    """
    package = Path(__file__).resolve().parent.parent
    for path in (package / "tools.json", package.parent / "tools.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == "drip-mcp" and data.get("version") == __version__:
            return {tool["name"]: tool for tool in data["tools"]}
    return {}


class MutationResult(ToolOutput):
    """Fields every mutating tool returns, so an agent can retry safely."""

    idempotency_key: str = Field(
        description="The key this write was sent with. To retry it, call again with this idempotency_key."
    )
    is_duplicate: bool = Field(
        default=False,
        description="True when Drip had already seen this key and returned the original result.",
    )
    redacted_paths: list[str] = Field(
        default_factory=list,
        description="Metadata fields replaced by [REDACTED] before sending (PII or secrets).",
    )


OutputT = TypeVar("OutputT", bound="ToolOutput")


def from_wire(
    output: type[OutputT], wire: BaseModel, *, omit: Mapping[str, str] | None = None, **extra: Any
) -> OutputT:
    """`output` built from the same-named fields of a wire model, saying why any wire field is left out.

    `omit` maps each wire field the output does not carry to the reason (PII, a duplicate in other units,
    ...); `extra` gives fields the caller converts itself (they win over the wire's). A wire field that is
    neither carried nor omitted is a `TypeError`: nothing is dropped silently.
    """
    reasons = omit or {}
    carried = set(output.model_fields)
    unexplained = [f for f in type(wire).model_fields if f not in carried and f not in reasons]
    if unexplained:
        raise TypeError(f"{output.__name__} drops {type(wire).__name__} field(s) {unexplained} without a reason")
    values = {name: getattr(wire, name) for name in type(wire).model_fields if name in carried}
    return output(**{**values, **extra})


def _finite_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        raise ValueError("must be a number, not a string")
    return value


MAX_QUANTITY = Decimal(10) ** 12
QUANTITY_LIMIT = "max_quantity"
"""Validation-context key: the operator's ``--max-quantity`` (a `Decimal`, or absent for no limit)."""


def _within_operator_limit(value: Decimal | None, info: ValidationInfo) -> Decimal | None:
    limit = (info.context or {}).get(QUANTITY_LIMIT)
    if value is not None and limit is not None and value > limit:
        raise PydanticCustomError(
            "quantity_limit",
            "{quantity} exceeds the operator's limit of {limit} per write",
            {"quantity": str(value), "limit": str(limit)},
        )
    return value


PositiveQuantity = Annotated[
    Decimal,
    BeforeValidator(_finite_decimal),
    Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_QUANTITY)}),
]
"""A positive, finite quantity; exact (Decimal) from here on (estimates: nothing is written)."""

Quantity = Annotated[PositiveQuantity, AfterValidator(_within_operator_limit)]
"""A usage write's quantity: a `PositiveQuantity` bounded by the operator's ``--max-quantity``."""

_NON_NEGATIVE_NUMBER = {"type": "number", "minimum": 0, "maximum": int(MAX_QUANTITY)}

EventQuantity = Annotated[
    Decimal | None,
    Field(ge=0, le=MAX_QUANTITY, allow_inf_nan=False),
    AfterValidator(_within_operator_limit),
    WithJsonSchema({"anyOf": [_NON_NEGATIVE_NUMBER, {"type": "null"}]}),
]
"""A run event's quantity: zero allowed, bounded by the operator's limit (a JSON number, not a string)."""

CostUnits = Annotated[
    Decimal | None,
    Field(ge=0, le=MAX_QUANTITY, allow_inf_nan=False),
    WithJsonSchema({"anyOf": [_NON_NEGATIVE_NUMBER, {"type": "null"}], "description": "Cost in your own units."}),
]
"""An event's cost in the caller's own units (≥ 0)."""

MAX_USDC = Decimal(10) ** 9

UsdcAmount = Annotated[
    Decimal,
    BeforeValidator(_finite_decimal),
    Field(ge=0, le=MAX_USDC, decimal_places=6, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": int(MAX_USDC)}),
]
"""A USDC amount or price (≥ 0, at most 6 decimal places), sent as an exact JSON number."""

CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Drip customer id (drip_get_or_create_customer).",
    ),
]
Meter = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="A meter (pricing plan unit type) from drip_list_meters, e.g. 'api_calls'.",
    ),
]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(description="Operational context only; PII, secrets and prompts are redacted."),
]
IdempotencyKey = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Omit at first; to retry this write, pass the idempotency_key it returned.",
    ),
]
NEEDS_SECRET_KEY = " Needs a secret (sk_) key."  # noqa: S105 - a sentence, not a credential
BATCH_ID_PATTERN = r"^bat_[0-9a-f]{24}$"
BatchId = Annotated[str, Field(pattern=BATCH_ID_PATTERN, description="The batch_id a batch tool returned.")]


def new_batch_id() -> str:
    """A batch's id: its events' default idempotency keys start with it (`batch_event_key`)."""
    return f"bat_{uuid.uuid4().hex[:24]}"


def batch_event_key(batch_id: str, index: int) -> str:
    """The idempotency key of event `index` of a batch, when the caller gave none."""
    return f"{batch_id}-{index}"


InT = TypeVar("InT", bound=ToolInput)
OutT = TypeVar("OutT", bound=ToolOutput)

Handler = Callable[[ToolContext, InT], Awaitable[OutT | CallToolResult | InputRequiredResult]]
"""A tool's handler: its output model, or (the catalogue's call tool) another tool's finished result."""
LedgerHook = Callable[[InT, OutT | None, DripError | None], Sequence[LedgerEntry]]
"""What the session ledger records for one call: (input, output or None, error or None) -> entries."""


@dataclass(frozen=True, eq=False)
class ToolSpec(Generic[InT, OutT]):
    """One tool, declared once. Everything else (tools/list, scope, tools.json) derives from it."""

    name: str
    title: str
    description: str
    toolset: str
    scope: KeyType
    input_model: type[InT]
    output_model: type[OutT]
    handler: Handler[InT, OutT] = field(repr=False)
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = True
    # Its writes are append-only usage/run writes: sent through the outbox, queued when Drip is unreachable.
    durable: bool = False
    # It moves money (charges): named in the live-key warnings of the banner and drip_ping.
    moves_money: bool = False
    # What the session ledger records for a call (None: nothing).
    ledger: LedgerHook[InT, OutT] | None = field(default=None, repr=False)
    # Listed on the default ``core`` surface (every operation is listed on ``full``).
    core: bool = False

    def __post_init__(self) -> None:
        # One place says why a pk_ key cannot have it: the model reads it in every secret tool's description.
        if self.scope is KeyType.SECRET and not self.description.endswith(NEEDS_SECRET_KEY):
            object.__setattr__(self, "description", self.description + NEEDS_SECRET_KEY)

    def build_input_schema(self) -> dict[str, Any]:
        """The input schema, from the input model (the only source), made portable for every client.

        `drip_mcp.portable_schema`: no ``$ref``/``title``/``exclusiveMinimum``, every object closed to the
        properties it declares, every property listed as required (optional ones nullable), metadata as a
        typed allowlist; the server still validates with the pydantic model.
        """
        return portable_input_schema(self.input_model.model_json_schema())

    def build_output_schema(self) -> dict[str, Any]:
        """The shape of the structured result (in ``tools.json``; not listed, to save the model's context)."""
        return self.output_model.model_json_schema(mode="serialization", by_alias=False)

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """As `build_input_schema`, read from the shipped ``tools.json`` when it is there (a faster start)."""
        shipped = shipped_manifest().get(self.name)
        return shipped["inputSchema"] if shipped else self.build_input_schema()

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        shipped = shipped_manifest().get(self.name)
        return shipped["outputSchema"] if shipped else self.build_output_schema()

    @cached_property
    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )

    @cached_property
    def mcp_tool(self) -> MCPTool:
        """The tool as listed (`drip_mcp.tools.listing.listed_tool`)."""
        return listed_tool(self)


def spec_factory(toolset: str, scope: KeyType = KeyType.PUBLIC) -> Callable[..., ToolSpec[Any, Any]]:
    """``spec(name, title, description, handler, input_model, output_model, **flags)`` for one toolset's
    hand-written tools (the pass-through ones use `drip_mcp.tools.declare.operation`)."""

    def spec(
        name: str, title: str, description: str, handler: Any, inp: Any, out: Any, **kw: Any
    ) -> ToolSpec[Any, Any]:
        return ToolSpec(
            name=name,
            title=title,
            description=description,
            toolset=toolset,
            scope=scope,
            input_model=inp,
            output_model=out,
            handler=handler,
            **kw,
        )

    return spec
