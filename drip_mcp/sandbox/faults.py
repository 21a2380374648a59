"""Fault injection: an ASGI middleware that makes ``/v1/`` requests fail on purpose.

Faults never touch ``/health`` or the ``/checkout`` pages (anything outside
`FaultConfig.route_prefix`). Forced errors use the Drip error envelope:
500 ``INTERNAL_ERROR``, other 5xx ``SERVICE_UNAVAILABLE``, 429
``RATE_LIMIT_EXCEEDED`` with a ``Retry-After`` header and body
``retryAfter``. A dropped connection ends the exchange with no response at
all; how that is done depends on the server, so it is delegated to a
`ConnectionDropper`: in-process (`raise_dropped`) it raises
`DroppedConnection`, which `Sandbox.transport()` turns into
``httpx2.RemoteProtocolError``; over a socket, `SocketDropper` aborts the TCP
connection.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drip_mcp.sandbox.config import FaultConfig

__all__ = ["ConnectionDropper", "DroppedConnection", "FaultInjector", "SocketDropper", "raise_dropped"]

ConnectionDropper = Callable[[Scope, Receive], Awaitable[None]]

_CODES = {429: "RATE_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR"}


class DroppedConnection(Exception):
    """The fault injector dropped this request's connection (no response was sent)."""


async def raise_dropped(scope: Scope, receive: Receive) -> NoReturn:
    """The in-process dropper: raise `DroppedConnection`."""
    raise DroppedConnection(f"sandbox fault injection dropped {scope['method']} {scope['path']}")


def _peer_key(peer: object) -> tuple[str, int] | None:
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None


class SocketDropper:
    """Drops real TCP connections; the server's protocol registers each transport."""

    def __init__(self) -> None:
        self._transports: dict[tuple[str, int], asyncio.BaseTransport] = {}

    def register(self, transport: asyncio.BaseTransport) -> None:
        """Remember a new connection, keyed by its peer address."""
        key = _peer_key(transport.get_extra_info("peername"))
        if key is not None:
            self._transports[key] = transport

    def unregister(self, transport: asyncio.BaseTransport) -> None:
        """Forget a closed connection."""
        key = _peer_key(transport.get_extra_info("peername"))
        if key is not None and self._transports.get(key) is transport:
            del self._transports[key]

    async def __call__(self, scope: Scope, receive: Receive) -> None:
        """Abort the request's connection and wait until the server notices."""
        key = _peer_key(scope.get("client"))
        transport = self._transports.get(key) if key is not None else None
        if transport is None:
            await raise_dropped(scope, receive)
        abort = getattr(transport, "abort", transport.close)
        abort()
        while (await receive())["type"] != "http.disconnect":
            pass


async def _discard(message: Message) -> None:
    """A `send` that throws the response away (the client never sees it)."""


class FaultInjector:
    """ASGI middleware applying a `FaultConfig` to matching requests."""

    def __init__(self, app: ASGIApp, config: FaultConfig, dropper: ConnectionDropper = raise_dropped) -> None:
        self.app = app
        self.config = config
        self.dropper = dropper
        self._random = random.Random(config.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        if scope["type"] != "http" or not scope["path"].startswith(config.route_prefix):
            await self.app(scope, receive, send)
            return
        low, high = config.latency_s
        if high > 0:
            await anyio.sleep(self._random.uniform(low, high))
        if config.drop_rate and self._random.random() < config.drop_rate:
            if config.drop_after_processing:
                await self.app(scope, receive, _discard)
            await self.dropper(scope, receive)
            return
        if config.failure_rate and config.statuses and self._random.random() < config.failure_rate:
            await self._fail(self._random.choice(config.statuses), send)
            return
        await self.app(scope, receive, send)

    async def _fail(self, status: int, send: Send) -> None:
        code = _CODES.get(status, "SERVICE_UNAVAILABLE")
        body: dict[str, object] = {"error": f"Sandbox fault injection: HTTP {status}", "code": code}
        headers = [(b"content-type", b"application/json")]
        if status == 429:
            body["retryAfter"] = self.config.retry_after_s
            headers.append((b"retry-after", format(self.config.retry_after_s, "g").encode()))
        payload = json.dumps(body).encode()
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
