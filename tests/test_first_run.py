"""First run (issue 17): help that shows the main flags, one clear line for a port in use or an unreachable API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from transport_helpers import drip_mcp_process

from drip_mcp.cli import main

KEY = "sk_test_firstrun0123456789"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(DRIP_MCP_STATE_DIR=str(tmp_path / "state"), DRIP_API_KEY=KEY, **extra)
    return env


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused


# --- --help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_shows_the_main_flags_the_key_variable_and_the_subcommands(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([flag])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--sandbox", "--transport", "--confirm-charges", "--port", "DRIP_API_KEY"):
        assert needle in text
    for command in ("sandbox", "demo", "tools", "outbox"):
        assert f"drip-mcp {command}" in text


# --- port in use -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["sandbox"],
        ["--sandbox", "--transport", "streamable-http"],
        ["--sandbox", "--transport", "sse"],
        ["--sandbox", "--transport", "streamable-http", "--stateless", "--workers", "2"],
    ],
    ids=["sandbox", "streamable-http", "sse", "workers"],
)
def test_a_port_in_use_is_one_line_and_exit_2_in_every_mode(tmp_path: Path, busy_port: int, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drip_mcp", *args, "--port", str(busy_port)],
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{busy_port}" in lines[0]
    assert "--port 0" in lines[0]


# --- an unreachable API at start-up ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_warns_once_when_the_api_is_unreachable_and_still_serves(tmp_path: Path) -> None:
    env = _env(tmp_path, DRIP_API_URL=f"http://127.0.0.1:{_closed_port()}/v1", DRIP_MAX_RETRIES="0")
    initialize = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    )
    async with await anyio.open_process([sys.executable, "-m", "drip_mcp"], env=env) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        with anyio.fail_after(15):
            await proc.stdin.send(initialize)
            answer = b""
            while b"\n" not in answer:  # served while the check runs
                answer += await proc.stdout.receive()
            stderr = ""
            while "unreachable" not in stderr:
                stderr += (await proc.stderr.receive()).decode()
            await proc.stdin.aclose()
            assert await proc.wait() == 0
            async for chunk in proc.stderr:
                stderr += chunk.decode()
    assert b'"serverInfo"' in answer
    assert stderr.startswith("drip-mcp ")
    assert stderr.count("unreachable") == 1
    assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.anyio
async def test_http_warns_once_when_the_api_is_unreachable_and_sandbox_mode_never_does(tmp_path: Path) -> None:
    env = _env(tmp_path, DRIP_API_URL=f"http://127.0.0.1:{_closed_port()}/v1", DRIP_MAX_RETRIES="0")
    async with drip_mcp_process("--transport", "streamable-http", env=env) as (proc, _, lines):
        assert proc.stderr is not None
        text = "\n".join(lines)
        with anyio.fail_after(15):
            while "unreachable" not in text:  # the check runs beside serving: before or after the listening line
                text += (await proc.stderr.receive()).decode()
    assert text.count("unreachable") == 1

    sandbox_env = _env(tmp_path, DRIP_SANDBOX_DB=str(tmp_path / "s.db"))
    async with drip_mcp_process("--sandbox", "--transport", "streamable-http", env=sandbox_env) as (_, port, lines):
        pass
    assert port > 0
    assert not [line for line in lines if "unreachable" in line]
