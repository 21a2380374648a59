"""Serve MCP over stdio (the default transport): one client, the server's own key.

The SDK's stdio transport turns a line that is not a JSON-RPC message into an
exception on the read stream, which the server drops without a word.
`ReplyToBadLines` wraps that read stream: it answers such a line the way
JSON-RPC 2.0 says (``-32700`` parse error for text that is not JSON, ``-32600``
invalid request for JSON that is not a message; ``"id": null``) and keeps serving.

State (`drip_mcp.state`) is the settings' store; the ledger and budget are this process's own.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

import anyio
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from drip_mcp.runtime import open_client, warn_if_unreachable
from drip_mcp.server import banner, build_server
from drip_mcp.settings import Settings
from drip_mcp.state.opening import open_state
from drip_mcp.tools.context import Services

__all__ = ["ReplyToBadLines", "bad_line_reply", "serve_stdio"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def bad_line_reply(exc: Exception) -> SessionMessage | None:
    """The JSON-RPC error reply for a line the transport could not read (None: a blank line, ignored)."""
    errors = exc.errors() if isinstance(exc, ValidationError) else []
    if errors and errors[0]["type"] == "json_invalid":
        if not str(errors[0].get("input", "x")).strip():
            return None
        code, message = PARSE_ERROR, "Parse error: the line is not JSON"
    else:
        code, message = INVALID_REQUEST, "Invalid Request: the line is not a JSON-RPC 2.0 message"
    error = types.JSONRPCError(jsonrpc="2.0", id=None, error=types.ErrorData(code=code, message=message))
    return SessionMessage(error)


class ReplyToBadLines:
    """A read stream that answers unreadable lines on `write` and passes every message on."""

    def __init__(self, read: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]) -> None:
        self._read = read
        self._write = write

    @property
    def last_context(self) -> Any:
        """The sender's context of the last message (the SDK's dispatcher reads it when present)."""
        return getattr(self._read, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._read.receive()
            if not isinstance(item, Exception):
                return item
            reply = bad_line_reply(item)
            if reply is not None:
                await self._write.send(reply)

    async def aclose(self) -> None:
        await self._read.aclose()

    def __aiter__(self) -> ReplyToBadLines:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> ReplyToBadLines:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def serve_stdio(settings: Settings) -> None:
    """Serve MCP over stdio until the client goes away; one line on stderr says what runs."""

    async def main() -> None:
        async with (
            open_state(settings) as store,
            open_client(settings, store=store) as client,
            anyio.create_task_group() as checks,
        ):
            server = build_server(settings, client, services=Services.for_settings(settings, store, per_process=True))
            print(banner(settings, server, "stdio"), file=sys.stderr, flush=True)
            checks.start_soon(warn_if_unreachable, client, settings)
            # As MCPServer.run_stdio_async, with the read stream wrapped (the SDK has no public hook for it).
            lowlevel = server._lowlevel_server
            async with stdio_server() as (read, write):
                await lowlevel.run(ReplyToBadLines(read, write), write, lowlevel.create_initialization_options())
            checks.cancel_scope.cancel()

    anyio.run(main)
