"""The tool registry: every tool drip-mcp serves, declared once, in catalogue order.

`TOOLS` is the single source for the MCP tool list, the key-scope checks and
``tools.json``. `select_tools` applies the key's scope and the operator's
filters, which can only narrow what the key allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drip_mcp.keys import KeyType
from drip_mcp.settings import TOOLSETS
from drip_mcp.tools import (
    billing,
    catalogue,
    charge,
    contracts,
    customers,
    entitlements,
    events,
    runs,
    status,
    subscriptions,
    usage,
    webhooks,
    workflows,
)
from drip_mcp.tools.base import ToolSpec

__all__ = ["CATALOGUE_TOOLS", "OPERATIONS", "TOOLS", "TOOLS_BY_NAME", "ToolSpec", "select_tools"]

# Every Drip operation, in catalogue order: each is a tool on the "full" surface.
OPERATIONS: tuple[ToolSpec[Any, Any], ...] = (
    *usage.TOOLS,
    *runs.TOOLS,
    *workflows.TOOLS,
    *events.TOOLS,
    *charge.TOOLS,
    *billing.TOOLS,
    *customers.TOOLS,
    *entitlements.TOOLS,
    *subscriptions.TOOLS,
    *contracts.TOOLS,
    *webhooks.TOOLS,
    *status.TOOLS,
)
# Listed on the "core" surface beside the core operations: search the catalogue, call any operation.
CATALOGUE_TOOLS: tuple[ToolSpec[Any, Any], ...] = catalogue.TOOLS
TOOLS: tuple[ToolSpec[Any, Any], ...] = (*OPERATIONS, *CATALOGUE_TOOLS)
TOOLS_BY_NAME: dict[str, ToolSpec[Any, Any]] = {t.name: t for t in TOOLS}

if len(TOOLS_BY_NAME) != len(TOOLS):  # pragma: no cover - a registry bug, caught at import
    raise RuntimeError("duplicate tool names in the registry")
if unknown := {t.toolset for t in TOOLS} - set(TOOLSETS):  # pragma: no cover
    raise RuntimeError(f"tools declare unknown toolsets: {unknown}")


def select_tools(
    key_type: KeyType,
    *,
    toolsets: Iterable[str] = TOOLSETS,
    tools: Iterable[str] = (),
    exclude_tools: Iterable[str] = (),
    read_only: bool = False,
) -> tuple[ToolSpec[Any, Any], ...]:
    """The operations a key of `key_type` may use under the operator's filters, in catalogue order."""
    sets, only, never = set(toolsets), set(tools), set(exclude_tools)
    return tuple(
        t
        for t in OPERATIONS
        if (t.scope is KeyType.PUBLIC or key_type is KeyType.SECRET)
        and t.toolset in sets
        and (not only or t.name in only)
        and t.name not in never
        and (t.read_only or not read_only)
    )
