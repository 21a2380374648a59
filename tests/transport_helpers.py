"""Helpers for the HTTP transport tests: a real uvicorn on 127.0.0.1:0, MCP clients, a subprocess server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import uvicorn
from anyio.abc import Process
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 15.0


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Run `app` under uvicorn on an ephemeral loopback port; yield ``http://127.0.0.1:PORT``."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    done = anyio.Event()

    async def run() -> None:
        try:
            await server.serve()
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(STARTUP_TIMEOUT_S):
            while not server.started:
                if done.is_set():
                    raise RuntimeError("uvicorn did not start (lifespan failed?)")
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            with anyio.fail_after(STARTUP_TIMEOUT_S):
                await done.wait()


@asynccontextmanager
async def streamable_session(url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over streamable HTTP."""
    http = httpx2.AsyncClient(headers=dict(headers or {}), timeout=httpx2.Timeout(CALL_TIMEOUT_S))
    async with (
        http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def sse_session(url: str, headers: Mapping[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over SSE."""
    async with (
        sse_client(url, headers=dict(headers or {}), timeout=CALL_TIMEOUT_S, sse_read_timeout=CALL_TIMEOUT_S) as (
            read,
            write,
        ),
        ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S) as session,
    ):
        await session.initialize()
        yield session


def initialize_body() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "transport-tests", "version": "0"},
        },
    }


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@asynccontextmanager
async def drip_mcp_process(*args: str, env: Mapping[str, str]) -> AsyncIterator[tuple[Process, int, list[str]]]:
    """``python -m drip_mcp ARGS --port 0``; yields the process, the port it announced and its stderr lines."""
    process = await anyio.open_process(
        [sys.executable, "-m", "drip_mcp", *args, "--port", "0"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        buffer = b""
        port: int | None = None
        with anyio.fail_after(STARTUP_TIMEOUT_S):
            while port is None:
                chunk = await process.stderr.receive()
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    line = raw.decode(errors="replace")
                    lines.append(line)
                    match = _LISTENING.search(line)
                    if match:
                        port = int(match.group(1))
        yield process, port, lines
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5):
                await process.wait()
        await process.aclose()
