"""What listing and filtering need to know of an operation, without importing it.

`Operation` is the part of a `drip_mcp.tools.base.ToolSpec` that tools/list, the
key-scope checks, the operator's filters, OAuth scopes, the banner and
``drip_find_operations`` read. A `ToolSpec` is one; so is a `ListedOperation`, read
from the shipped ``tools.json`` (generated from the specs, checked by a test), which
names the module that declares the operation. The registry (`drip_mcp.tools`) hands
out `ListedOperation`s at start-up and imports a toolset's module, with its models
and handlers, when one of its operations is first called: ~45 ms of start-up that a
session pays only for the toolsets it uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from mcp_types import Tool as MCPTool
from mcp_types import ToolAnnotations

from drip_mcp.keys import KeyType

__all__ = ["ListedOperation", "Operation", "listed_tool"]


class Operation(Protocol):
    """An operation as listed (see the module docstring)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def toolset(self) -> str: ...
    @property
    def scope(self) -> KeyType: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def destructive(self) -> bool: ...
    @property
    def idempotent(self) -> bool: ...
    @property
    def moves_money(self) -> bool: ...
    @property
    def core(self) -> bool: ...
    @property
    def input_schema(self) -> dict[str, Any]: ...
    @property
    def annotations(self) -> ToolAnnotations: ...
    @property
    def mcp_tool(self) -> MCPTool: ...


@dataclass(frozen=True)
class ListedOperation:
    """An `Operation` read from a ``tools.json`` entry; `module` declares its `ToolSpec`."""

    name: str
    title: str
    description: str
    toolset: str
    scope: KeyType
    read_only: bool
    destructive: bool
    idempotent: bool
    moves_money: bool
    core: bool
    module: str
    input_schema: dict[str, Any] = field(repr=False)
    annotations: ToolAnnotations = field(repr=False)

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> ListedOperation:
        annotations = ToolAnnotations.model_validate(entry["annotations"])
        return cls(
            name=entry["name"],
            title=entry["title"],
            description=entry["description"],
            toolset=entry["toolset"],
            scope=KeyType(entry["keyType"]),
            read_only=bool(annotations.read_only_hint),
            destructive=bool(annotations.destructive_hint),
            idempotent=bool(annotations.idempotent_hint),
            moves_money=bool(entry["movesMoney"]),
            core="core" in entry["surfaces"],
            module=entry["module"],
            input_schema=entry["inputSchema"],
            annotations=annotations,
        )

    @cached_property
    def mcp_tool(self) -> MCPTool:
        return listed_tool(self)


def listed_tool(operation: Operation) -> MCPTool:
    """The tool as tools/list shows it. No output schema: it would double the context a tool list costs, and
    the result's JSON text block already shows the model what came back (error results included)."""
    return MCPTool(
        name=operation.name,
        title=operation.title,
        description=operation.description,
        input_schema=operation.input_schema,
        annotations=operation.annotations,
    )
