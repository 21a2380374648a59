"""The tool registry: every tool drip-mcp serves, declared once, in catalogue order.

Each toolset module declares its operations as `ToolSpec`s (its ``TOOLS``); `MODULES`
lists the modules in catalogue order. Start-up does not import them: `operations()`
reads what listing needs from the shipped ``tools.json`` (`drip_mcp.tools.listing`),
and `spec_of(name)` imports an operation's module when it is first called. Without a
current ``tools.json`` (a checkout whose file is stale) everything is imported.
`all_operations()` and `all_tools()` import them all, for ``tools.json`` itself and for tests; so does
reading ``TOOLS``, ``OPERATIONS`` or ``TOOLS_BY_NAME``. `select_tools` applies the
key's scope and the operator's filters, which can only narrow what the key allows.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from typing import Any

from drip_mcp.keys import KeyType
from drip_mcp.settings import TOOLSETS
from drip_mcp.tools import catalogue
from drip_mcp.tools.base import ToolSpec, shipped_manifest
from drip_mcp.tools.listing import ListedOperation, Operation

__all__ = [
    "CATALOGUE_TOOLS",
    "MODULES",
    "OPERATIONS",
    "TOOLS",
    "TOOLS_BY_NAME",
    "Operation",
    "ToolSpec",
    "all_operations",
    "all_tools",
    "module_of",
    "operations",
    "select_tools",
    "spec_of",
]

# The toolset modules, in catalogue order: each declares ``TOOLS``, every one an operation.
MODULES: tuple[str, ...] = tuple(
    f"drip_mcp.tools.{name}"
    for name in (
        "usage",
        "runs",
        "workflows",
        "events",
        "charge",
        "billing",
        "customers",
        "entitlements",
        "subscriptions",
        "contracts",
        "webhooks",
        "status",
    )
)
# Listed on the "core" surface beside the core operations: search the catalogue, call any operation.
CATALOGUE_TOOLS: tuple[ToolSpec[Any, Any], ...] = catalogue.TOOLS


@functools.cache
def _declared() -> dict[str, tuple[str, ToolSpec[Any, Any]]]:
    """Every operation by name, with its module: imports every toolset module."""
    found: dict[str, tuple[str, ToolSpec[Any, Any]]] = {}
    for module in MODULES:
        for declared in importlib.import_module(module).TOOLS:
            if declared.name in found:  # pragma: no cover - a registry bug
                raise RuntimeError(f"duplicate tool name {declared.name!r} in the registry")
            found[declared.name] = (module, declared)
    if unknown := {s.toolset for _, s in found.values()} - set(TOOLSETS):  # pragma: no cover
        raise RuntimeError(f"tools declare unknown toolsets: {unknown}")
    return found


def all_operations() -> tuple[ToolSpec[Any, Any], ...]:
    """Every operation's `ToolSpec`, in catalogue order (imports every toolset module)."""
    return tuple(declared for _, declared in _declared().values())


def all_tools() -> tuple[ToolSpec[Any, Any], ...]:
    """Every tool: the operations, then the two catalogue tools (imports every toolset module)."""
    return (*all_operations(), *CATALOGUE_TOOLS)


def module_of(name: str) -> str:
    """The module that declares operation `name`."""
    return _declared()[name][0]


@functools.cache
def operations() -> dict[str, Operation]:
    """Every operation by name, in catalogue order, as listed: from ``tools.json`` when it is current."""
    shipped = shipped_manifest()
    catalogue_names = {t.name for t in CATALOGUE_TOOLS}
    listed = [entry for name, entry in shipped.items() if name not in catalogue_names]
    if listed and all("module" in entry and "movesMoney" in entry for entry in listed):
        return {entry["name"]: ListedOperation.from_manifest(entry) for entry in listed}
    return {declared.name: declared for declared in all_operations()}


@functools.cache
def spec_of(name: str) -> ToolSpec[Any, Any]:
    """The `ToolSpec` of tool `name` (a catalogue tool or an operation), importing its module if need be."""
    for tool in CATALOGUE_TOOLS:
        if tool.name == name:
            return tool
    listed = operations()[name]
    if isinstance(listed, ListedOperation):
        declared: tuple[ToolSpec[Any, Any], ...] = importlib.import_module(listed.module).TOOLS
        return next(t for t in declared if t.name == name)
    return _declared()[name][1]


def select_tools(
    key_type: KeyType,
    *,
    toolsets: Iterable[str] = TOOLSETS,
    tools: Iterable[str] = (),
    exclude_tools: Iterable[str] = (),
    read_only: bool = False,
) -> tuple[Operation, ...]:
    """The operations a key of `key_type` may use under the operator's filters, in catalogue order."""
    sets, only, never = set(toolsets), set(tools), set(exclude_tools)
    return tuple(
        t
        for t in operations().values()
        if (t.scope is KeyType.PUBLIC or key_type is KeyType.SECRET)
        and t.toolset in sets
        and (not only or t.name in only)
        and t.name not in never
        and (t.read_only or not read_only)
    )


def __getattr__(name: str) -> Any:
    """``TOOLS``, ``OPERATIONS`` and ``TOOLS_BY_NAME``: every `ToolSpec`, imported on first use."""
    if name == "OPERATIONS":
        return all_operations()
    if name == "TOOLS":
        return all_tools()
    if name == "TOOLS_BY_NAME":
        return {t.name: t for t in all_tools()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
