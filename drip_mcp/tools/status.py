"""Toolset ``status``: is Drip reachable, and what is this server allowed to do?"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from drip_mcp._version import __version__
from drip_mcp.errors import DripError
from drip_mcp.keys import KeyType
from drip_mcp.tools.base import ToolInput, ToolOutput, ToolSpec
from drip_mcp.tools.context import ToolContext


class PingInput(ToolInput):
    pass


class PingOutput(ToolOutput):
    ok: bool = Field(description="True when the Drip API answered healthy.")
    api_status: str
    latency_ms: float | None = None
    base_url: str
    key_type: str = Field(description="'public' (pk_) or 'secret' (sk_).")
    key_mode: str = Field(description="'test' or 'live'. Live charges move real money.")
    key: str = Field(description="The configured key, masked.")
    sandbox: bool
    read_only: bool
    toolsets: list[str]
    tools: list[str] = Field(description="Tools this key and the operator's filters allow.")
    warnings: list[str] = Field(default_factory=list)
    version: str = __version__


async def ping(ctx: ToolContext, inp: PingInput) -> PingOutput:
    started = time.perf_counter()
    try:
        health = await ctx.client.health()
        status, ok = health.status, health.status == "healthy"
    except DripError as exc:
        status, ok = f"unreachable: {exc.code}", False
    latency = round((time.perf_counter() - started) * 1000, 2)
    key = ctx.client.api_key
    warnings = []
    if key.is_live:
        warnings.append("LIVE key: drip_charge moves real money.")
    return PingOutput(
        ok=ok,
        api_status=status,
        latency_ms=latency,
        base_url=ctx.client.base_url,
        key_type=key.type.value,
        key_mode=key.mode.value,
        key=key.masked,
        sandbox=ctx.settings.sandbox,
        read_only=ctx.settings.read_only,
        toolsets=list(ctx.settings.toolsets),
        tools=ctx.services.allowed_tools(key.type),
        warnings=warnings,
    )


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_ping",
        title="Check Drip connection",
        description=(
            "Check that the Drip API is reachable and see how this server is configured: key type (public or "
            "secret) and mode (test or live), sandbox or not, and which tools are enabled. Call it first when "
            "unsure. Read-only."
        ),
        toolset="status",
        scope=KeyType.PUBLIC,
        input_model=PingInput,
        output_model=PingOutput,
        handler=ping,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
)
