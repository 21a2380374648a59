"""Shared by the framework examples: where `drip-mcp` is, and a scripted stand-in for an LLM.

The examples run offline (CI runs them), so no real model decides what to call. `ScriptedPolicy`
plays the model's part: given the result of the last tool call it picks the next call, the way a
model would read a tool result and act on it. Everything else (starting `drip-mcp --sandbox` over
stdio, listing its tools, calling them) is the framework's real MCP integration.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXTERNAL_ID = "example-user-42"


def drip_mcp_command() -> str:
    """The `drip-mcp` console script next to this Python (its venv), else the one on PATH."""
    found = shutil.which("drip-mcp", path=str(Path(sys.executable).parent)) or shutil.which("drip-mcp")
    if not found:
        sys.exit("drip-mcp is not installed: run `.venv/bin/pip install -e '.[examples]'` first")
    return found


@contextmanager
def sandbox_env() -> Iterator[dict[str, str]]:
    """Environment for `drip-mcp --sandbox` with its state (sandbox db, outbox) in a throwaway directory."""
    with tempfile.TemporaryDirectory(prefix="drip-mcp-example-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
        env["DRIP_MCP_STATE_DIR"] = tmp
        yield env


def as_dict(result: Any) -> dict[str, Any]:
    """A tool result as a dict: drip-mcp answers with one JSON text block (and structured content)."""
    if isinstance(result, dict):
        return result
    if isinstance(result, str):
        return json.loads(result)
    if isinstance(result, list):  # content blocks, e.g. [{"type": "text", "text": "{...}"}]
        for block in result:
            text = block.get("text") if isinstance(block, dict) else getattr(block, "text", None)
            if text:
                return json.loads(text)
    raise TypeError(f"unexpected tool result: {result!r}")


def show(tool: str, args: dict[str, Any], result: dict[str, Any] | None = None) -> None:
    """One transcript line per call and per result."""
    if result is None:
        print(f"> {tool} {json.dumps(args, separators=(',', ':'))}", flush=True)
    else:
        text = json.dumps(result, separators=(",", ":"))
        print(f"  {text[:200]}{'…' if len(text) > 200 else ''}", flush=True)


class ScriptedPolicy:
    """Stands in for the model: get-or-create a customer, track usage, record a run, check the balance."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.customer_id: str | None = None
        self.balance: str | None = None

    def first_call(self) -> tuple[str, dict[str, Any]]:
        return "drip_get_or_create_customer", {"external_customer_id": EXTERNAL_ID}

    def next_call(self, tool: str, result: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The next (tool, arguments) after `tool` answered `result`; None when the task is done."""
        if "error" in result:
            raise RuntimeError(f"{tool} failed: {result['error']}")
        if tool == "drip_get_or_create_customer":
            self.customer_id = result["customer"]["id"]
            return "drip_track_usage", {
                "customer_id": self.customer_id,
                "meter": "tokens",
                "quantity": 1200,
                "metadata": {"model": "scripted", "source": self.workflow},
            }
        if tool == "drip_track_usage":
            return "drip_record_run", {
                "customer_id": self.customer_id,
                "workflow": self.workflow,
                "events": [{"event_type": "llm_call", "quantity": 2}, {"event_type": "tool_call"}],
            }
        if tool == "drip_record_run":
            return "drip_get_balance", {"customer_id": self.customer_id}
        if tool == "drip_get_balance":
            self.balance = result["balance_usdc"]
            return None
        raise RuntimeError(f"unexpected tool {tool}")

    def final_answer(self) -> str:
        return f"Done: customer {self.customer_id} has {self.balance} USDC."
