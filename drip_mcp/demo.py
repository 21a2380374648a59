"""``drip-mcp demo``: a scripted agent session against a throwaway sandbox, printed step by step.

It shows, without an account or network, what an agent sees: it calls the tools
through a real MCP client (in-process) exactly as Claude Code or Cursor would.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client

from drip_mcp.launch import launch_command
from drip_mcp.runtime import open_client
from drip_mcp.server import build_server
from drip_mcp.settings import Settings

__all__ = ["run_demo"]

DEMO_KEY = "sk_test_drip_mcp_demo"


def _show(out: TextIO, tool: str, args: dict[str, Any], result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.structured_content or {}
    shown = json.dumps(data, separators=(",", ":"))
    print(f"> {tool} {json.dumps(args, separators=(',', ':'))}", file=out)
    print(f"  {'ERROR ' if result.is_error else ''}{shown[:300]}{'…' if len(shown) > 300 else ''}", file=out)
    return data


async def _session(state: Path, out: TextIO) -> None:
    # A throwaway state directory: the sandbox database, the outbox and any secret file live there.
    settings = Settings.load({"DRIP_MCP_STATE_DIR": str(state)}, api_key=DEMO_KEY, sandbox=True)
    async with open_client(settings) as drip, Client(build_server(settings, drip)) as client:

        async def call(tool: str, **args: Any) -> dict[str, Any]:
            return _show(out, tool, args, await client.call_tool(tool, args))

        await call("drip_ping")
        await call("drip_list_meters")
        customer = (await call("drip_create_customer", external_customer_id="demo-user"))["customer"]["id"]
        await call("drip_track_usage", customer_id=customer, meter="tokens", quantity=1200, metadata={"model": "demo"})
        await call("drip_charge", customer_id=customer, meter="api_calls", quantity=3, dry_run=True)
        await call("drip_charge", customer_id=customer, meter="api_calls", quantity=3)
        await call("drip_get_balance", customer_id=customer)
        run = await call(
            "drip_record_run",
            customer_id=customer,
            workflow="demo_agent",
            events=[{"event_type": "llm_call", "quantity": 2}, {"eventType": "tool_call", "tool": "web_search"}],
        )
        await call("drip_get_run_timeline", run_id=run["run_id"])
        await call("drip_session_summary")


def run_demo(out: TextIO = sys.stdout) -> int:
    """Run the demo in a temporary directory; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="drip-mcp-demo-") as tmp:
        anyio.run(_session, Path(tmp), out)
    next_step = f"{launch_command()} --sandbox"
    print(f"\nEverything above ran against a throwaway sandbox. Next: `{next_step}`.", file=out)
    return 0
