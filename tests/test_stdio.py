"""The real thing: ``python -m drip_mcp --sandbox`` as a subprocess, spoken to over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from server_fixtures import assert_error, assert_ok

from drip_mcp.tools import TOOLS

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
SK = "sk_test_stdiosuite00001"
DEADLINE_S = 20


def server_params(tmp_path: Path, *, api_key: str | None, surface: str = "core") -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "DRIP_API_KEY"}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path / "state")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    if api_key is not None:
        env["DRIP_API_KEY"] = api_key
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "drip_mcp", "--sandbox", "--sandbox-db", str(tmp_path / "sandbox.db"), "--surface", surface],
        env=env,
        cwd=str(REPO),
    )


async def ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return assert_ok(name, await client.call_tool(name, arguments), api_key=SK)


async def test_stdio_full_flow_against_the_sandbox(tmp_path: Path) -> None:
    with anyio.fail_after(DEADLINE_S):
        async with Client(server_params(tmp_path, api_key=SK, surface="full"), read_timeout_seconds=10) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert "drip_charge" in names
            assert "drip_create_webhook" in names

            created = await ok(client, "drip_create_customer", {"external_customer_id": "stdio-user"})
            customer_id = created["customer"]["id"]
            tracked = await ok(
                client, "drip_track_usage", {"customer_id": customer_id, "meter": "tokens", "quantity": 50}
            )
            assert tracked["status"] == "recorded"
            before = await ok(client, "drip_get_balance", {"customer_id": customer_id})
            charged = await ok(client, "drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 3})
            assert charged["amount_usdc"] == "0.003000"
            after = await ok(client, "drip_get_balance", {"customer_id": customer_id})
            assert before["balance_usdc"] == "100.000000"
            assert after["balance_usdc"] == "99.997000"
            assert Decimal(before["balance_usdc"]) - Decimal(after["balance_usdc"]) == Decimal(charged["amount_usdc"])

            recorded = await ok(
                client,
                "drip_record_run",
                {
                    "customer_id": customer_id,
                    "workflow": "stdio_agent",
                    "events": [{"event_type": "llm_call", "quantity": 3}, {"eventType": "tool_call"}],
                },
            )
            timeline = await ok(client, "drip_get_run_timeline", {"run_id": recorded["run_id"]})
            assert timeline["status"] == "COMPLETED"
            assert [e["event_type"] for e in timeline["events"]] == ["llm_call", "tool_call"]

            error = assert_error(
                await client.call_tool(
                    "drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 0}
                ),
                "VALIDATION_ERROR",
                api_key=SK,
            )
            assert error["details"][0]["path"] == "quantity"
    assert (tmp_path / "sandbox.db").exists()


async def test_stdio_without_a_key_uses_a_public_sandbox_key_and_says_so_on_stderr(tmp_path: Path) -> None:
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w+", encoding="utf-8") as errlog, anyio.fail_after(DEADLINE_S):
        params = server_params(tmp_path, api_key=None)
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=10) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            ping = assert_ok("drip_ping", await client.call_tool("drip_ping", {}))
            refused = await client.call_tool("drip_list_webhooks", {})
    banner = [line for line in errlog_path.read_text(encoding="utf-8").splitlines() if line.startswith("drip-mcp")]
    assert not [n for n in names if "webhook" in n]
    assert "drip_track_usage" in names
    assert (ping["key_type"], ping["key_mode"], ping["sandbox"]) == ("public", "test", True)
    assert_error(refused, "PUBLIC_KEY_NOT_ALLOWED")
    assert len(banner) == 1
    assert "sandbox" in banner[0]
    assert "public" in banner[0]


async def test_stdio_banner_masks_the_key(tmp_path: Path) -> None:
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w+", encoding="utf-8") as errlog, anyio.fail_after(DEADLINE_S):
        async with Client(stdio_client(server_params(tmp_path, api_key=SK), errlog=errlog)) as client:
            listed = await client.list_tools()
    stderr = errlog_path.read_text(encoding="utf-8")
    assert SK not in stderr
    assert SK[:8] + "…" + SK[-4:] in stderr
    assert "sandbox" in stderr
    assert [t.name for t in listed.tools] == [t.name for t in TOOLS if t.core]  # the default core surface


def test_stdio_server_exits_0_without_a_traceback_when_its_client_closes_stdin(tmp_path: Path) -> None:
    env = {**os.environ, "DRIP_MCP_STATE_DIR": str(tmp_path / "state")}
    env.pop("DRIP_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "drip_mcp", "--sandbox", "--sandbox-db", str(tmp_path / "s.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    try:
        out, err = proc.communicate(json.dumps(initialize).encode() + b"\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert json.loads(out.splitlines()[0])["result"]["serverInfo"]["name"] == "drip-mcp"
    assert b"Traceback" not in err


async def _read_json_line(stream: Any, buffer: bytearray) -> dict[str, Any]:
    while b"\n" not in buffer:
        buffer += await stream.receive()
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    message: dict[str, Any] = json.loads(line)
    return message


async def test_stdio_answers_a_line_that_is_not_json_rpc_with_an_error_and_keeps_serving(tmp_path: Path) -> None:
    env = {**os.environ, "DRIP_MCP_STATE_DIR": str(tmp_path / "state")}
    env.pop("DRIP_API_KEY", None)
    command = [sys.executable, "-m", "drip_mcp", "--sandbox", "--sandbox-db", str(tmp_path / "s.db")]
    initialize = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with await anyio.open_process(command, env=env, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        buffer = bytearray()
        with anyio.fail_after(DEADLINE_S):
            await proc.stdin.send(b"this is not json\n")
            parse_error = await _read_json_line(proc.stdout, buffer)
            await proc.stdin.send(b'{"hello": "world"}\n')
            invalid = await _read_json_line(proc.stdout, buffer)
            await proc.stdin.send(json.dumps(initialize).encode() + b"\n")
            initialized = await _read_json_line(proc.stdout, buffer)
            await proc.stdin.aclose()
            assert await proc.wait() == 0
    assert parse_error["jsonrpc"] == "2.0"
    assert parse_error["id"] is None
    assert parse_error["error"]["code"] == -32700
    assert (invalid["id"], invalid["error"]["code"]) == (None, -32600)
    assert initialized["id"] == 7
    assert initialized["result"]["serverInfo"]["name"] == "drip-mcp"
