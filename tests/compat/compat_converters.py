"""The LLM-client schema converters the compat tests run, each called the way its library calls it.

A converter takes an MCP `Tool` and returns ``None`` when the library accepts its input schema as is,
or the library's own reason when it does not (an exception, or openai-agents' silent non-strict fallback).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from agents.mcp import MCPServerStdio
from agents.mcp.util import MCPUtil
from agents.strict_schema import ensure_strict_json_schema
from google.genai import types
from google.genai._mcp_utils import mcp_to_gemini_tool
from mcp_types import Tool
from server_fixtures import PK, SK, open_harness

__all__ = ["CONVERTERS", "listed_tools"]

# openai-agents logs the strict-mode fallback at INFO; we report it ourselves.
logging.getLogger("openai.agents").setLevel(logging.WARNING)


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(first[:3])}"[:300]


def openai_strict(tool: Tool) -> str | None:
    """openai-agents' MCP path: `MCPUtil.to_function_tool(..., convert_schemas_to_strict=True)`.

    It calls `ensure_strict_json_schema(schema, _reject_open_objects=schema != {})` and, when that raises,
    logs at INFO and serves the tool non-strict (`strict_json_schema=False`). Both count as a failure.
    """
    server = MCPServerStdio(params={"command": "unused"}, name="drip")  # never connected
    function_tool = MCPUtil.to_function_tool(tool, server, True)
    if function_tool.strict_json_schema:
        return None
    schema: dict[str, Any] = json.loads(json.dumps(tool.input_schema))
    schema.setdefault("properties", {})
    try:
        ensure_strict_json_schema(schema, _reject_open_objects=tool.input_schema != {})
    except Exception as exc:
        return f"non-strict fallback: {_reason(exc)}"
    return "non-strict fallback (ensure_strict_json_schema did not raise)"


def gemini_mcp_to_gemini_tool(tool: Tool) -> str | None:
    """google-genai's own MCP adapter, `google.genai._mcp_utils.mcp_to_gemini_tool`."""
    try:
        mcp_to_gemini_tool(tool)
    except Exception as exc:
        return _reason(exc)
    return None


def gemini_function_declaration(tool: Tool) -> str | None:
    """`types.FunctionDeclaration(name=, description=, parameters=<schema dict>)`."""
    try:
        types.FunctionDeclaration(name=tool.name, description=tool.description, parameters=tool.input_schema)
    except Exception as exc:
        return _reason(exc)
    return None


def gemini_schema_from_json_schema(tool: Tool) -> str | None:
    """`types.Schema.from_json_schema(json_schema=types.JSONSchema(**schema))` (library defaults)."""
    try:
        types.Schema.from_json_schema(json_schema=types.JSONSchema(**tool.input_schema))
    except Exception as exc:
        return _reason(exc)
    return None


CONVERTERS: dict[str, Callable[[Tool], str | None]] = {
    "openai_strict": openai_strict,
    "gemini_mcp_to_gemini_tool": gemini_mcp_to_gemini_tool,
    "gemini_function_declaration": gemini_function_declaration,
    "gemini_schema_from_json_schema": gemini_schema_from_json_schema,
}


async def _list(tmp: Path) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for key in (PK, SK):
        for surface in ("core", "full"):
            async with open_harness(tmp / f"{key[:2]}-{surface}", api_key=key, surface=surface) as harness:
                for tool in (await harness.mcp.list_tools()).tools:
                    tools[tool.name] = tool
    return tools


def listed_tools() -> dict[str, Tool]:
    """Every tool tools/list offers to a ``pk_`` or an ``sk_`` key on either surface, fetched in-process
    through `mcp.Client`: every operation (``full``) and the two catalogue tools (``core``)."""
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("pk-core", "pk-full", "sk-core", "sk-full"):
            (Path(tmp) / sub).mkdir()
        return anyio.run(_list, Path(tmp))
