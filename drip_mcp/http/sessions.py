"""Per-tenant limits on MCP sessions, so one key cannot exhaust the server.

The SDK's streamable-HTTP session manager (mcp 2.3,
``StreamableHTTPSessionManager``) keeps every session in one dict
(``_server_instances``) under one global cap (``max_sessions``, 10,000; the
next ``initialize`` gets 503) and binds each session to the principal that
opened it (``_session_owners``). Ten thousand ``initialize`` calls with made-up
keys filled it, and then every tenant got 503. `SessionLimits` sits in front of
it and, per tenant (the principal the auth layer put in ``scope["user"]``):

* **checks the key first** (per-request keys): a session is opened only for a key
  Drip accepts, by one authenticated read whose answer (yes or no) is cached by
  fingerprint for `KEY_CHECK_TTL_S` (`KeyCheck`);
* **caps open sessions**: a tenant holding ``limit`` sessions gets 429
  ``TOO_MANY_SESSIONS`` for another (other tenants are unaffected);
* **reaps idle sessions**: a session with no request for ``idle_s`` stops
  counting; the SDK is given the same idle timeout, so it ends them too.

Legacy SSE keeps a session as long as its ``GET /sse`` stream is open: such a stream
counts against the same cap while it lasts, after the same key check.

Without a principal (``--auth-token``, or no auth on loopback) there is one tenant
and the SDK's global cap applies. Stateless mode keeps no sessions: nothing to do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drip_mcp.api.client import DripClient
from drip_mcp.errors import AuthenticationError, DripError, PermissionDeniedError
from drip_mcp.state.tenancy import tenant_for_fingerprint, tenant_of

__all__ = ["DEFAULT_SESSION_IDLE_S", "KEY_CHECK_TTL_S", "KeyCheck", "SessionLimits", "TenantSessions"]

DEFAULT_SESSION_IDLE_S = 900.0
KEY_CHECK_TTL_S = 300.0
_SESSION_HEADER = b"mcp-session-id"


@dataclass
class TenantSessions:
    """Open sessions per tenant with their last activity; idle ones are forgotten when counted."""

    limit: int
    idle_s: float = DEFAULT_SESSION_IDLE_S
    clock: Callable[[], float] = time.monotonic
    _open: dict[str, dict[str, float]] = field(default_factory=dict)

    _streams: dict[str, int] = field(default_factory=dict)

    def count(self, tenant: str) -> int:
        """The tenant's sessions: streamable-HTTP ones not idle, and SSE streams still open."""
        sessions = self._open.get(tenant, {})
        cutoff = self.clock() - self.idle_s
        for session_id in [s for s, seen in sessions.items() if seen < cutoff]:
            del sessions[session_id]
        if not sessions:
            self._open.pop(tenant, None)
        return len(sessions) + self._streams.get(tenant, 0)

    def admits(self, tenant: str) -> bool:
        return self.count(tenant) < self.limit

    def opened(self, tenant: str, session_id: str) -> None:
        self._open.setdefault(tenant, {})[session_id] = self.clock()

    def touched(self, tenant: str, session_id: str) -> None:
        sessions = self._open.get(tenant)
        if sessions is not None and session_id in sessions:
            sessions[session_id] = self.clock()

    def closed(self, tenant: str, session_id: str) -> None:
        self._open.get(tenant, {}).pop(session_id, None)

    def stream_opened(self, tenant: str) -> None:
        self._streams[tenant] = self._streams.get(tenant, 0) + 1

    def stream_closed(self, tenant: str) -> None:
        left = self._streams.get(tenant, 0) - 1
        if left > 0:
            self._streams[tenant] = left
        else:
            self._streams.pop(tenant, None)


class KeyCheck:
    """Does Drip accept this key? One authenticated read per fingerprint, the answer cached for `ttl_s`."""

    def __init__(self, ttl_s: float = KEY_CHECK_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._answers: dict[str, tuple[bool, float]] = {}

    async def accepts(self, client: DripClient) -> bool:
        """True when Drip answers an authenticated read; False on 401/403. Other errors propagate (not cached)."""
        fp = client.api_key.fingerprint
        cached = self._answers.get(fp)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        try:
            await client.list_customers(limit=1)
        except (AuthenticationError, PermissionDeniedError):
            answer = False
        else:
            answer = True
        if len(self._answers) > 10_000:  # made-up keys must not grow this without bound
            now = self._clock()
            self._answers = {k: v for k, v in self._answers.items() if v[1] > now}
        self._answers[fp] = (answer, self._clock() + self._ttl)
        return answer


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": message, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SessionLimits:
    """Pure ASGI, in front of the streamable-HTTP app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        sessions: TenantSessions,
        sse: bool = False,
        key_check: KeyCheck | None = None,
        tenant_client: Callable[[], DripClient] | None = None,
    ) -> None:
        self.app = app
        self._path = path.rstrip("/")
        self._sse = sse  # `path` is the SSE stream's (GET), not streamable HTTP's
        self._sessions = sessions
        self._key_check = key_check
        self._tenant_client = tenant_client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if (
            scope["type"] != "http"
            or scope.get("path", "").rstrip("/") != self._path
            or not isinstance(user, AuthenticatedUser)
        ):
            await self.app(scope, receive, send)
            return
        # The tenant: the client's key (per-request keys), else the OAuth token's subject (`acting_as`, set by
        # the OAuth middleware outside this one), else the one principal of a bearer token.
        tenant = (
            tenant_of(self._tenant_client().api_key)
            if self._tenant_client
            else tenant_for_fingerprint(user.access_token.client_id)
        )
        if self._sse:
            if scope.get("method") == "GET" and await self._admitted(tenant, send):
                self._sessions.stream_opened(tenant)
                try:
                    await self.app(scope, receive, send)
                finally:
                    self._sessions.stream_closed(tenant)
            elif scope.get("method") != "GET":
                await self.app(scope, receive, send)
            return
        session_id = dict(scope.get("headers", ())).get(_SESSION_HEADER)
        if session_id is not None:
            await self._existing(tenant, session_id.decode("latin-1"), scope, receive, send)
        elif scope.get("method") == "POST":
            await self._opening(tenant, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _existing(self, tenant: str, session_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        self._sessions.touched(tenant, session_id)
        status = await _serve(self.app, scope, receive, send)
        if status == 404 or (scope.get("method") == "DELETE" and status is not None and status < 400):
            self._sessions.closed(tenant, session_id)

    async def _admitted(self, tenant: str, send: Send) -> bool:
        """May `tenant` open another session? If not, the refusal has been sent."""
        if self._key_check is not None and self._tenant_client is not None:
            try:
                accepted = await self._key_check.accepts(self._tenant_client())
            except DripError:
                await _refuse(send, 503, "KEY_CHECK_FAILED", "Could not verify the Drip key with Drip; try again.")
                return False
            if not accepted:
                await _refuse(send, 401, "UNAUTHORIZED", "Drip does not accept this key.")
                return False
        if not self._sessions.admits(tenant):
            await _refuse(
                send,
                429,
                "TOO_MANY_SESSIONS",
                f"This key already holds {self._sessions.limit} open MCP sessions: close one (HTTP DELETE, or end "
                "its SSE stream) or let an idle one expire.",
            )
            return False
        return True

    async def _opening(self, tenant: str, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._admitted(tenant, send):
            return
        opened: list[str] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                for name, value in message.get("headers", ()):
                    if name.lower() == _SESSION_HEADER:
                        opened.append(value.decode("latin-1"))
            await send(message)

        # Registered before the body is streamed: concurrent openings of one tenant count each other.
        await self.app(scope, receive, _registering(watch, lambda: opened, tenant, self._sessions))


def _registering(
    send: Send, opened: Callable[[], list[str]], tenant: str, sessions: TenantSessions
) -> Callable[[Message], Awaitable[None]]:
    async def registering_send(message: Message) -> None:
        await send(message)
        if message["type"] == "http.response.start":
            for session_id in opened():
                sessions.opened(tenant, session_id)

    return registering_send


async def _serve(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> int | None:
    status: list[int] = []

    async def watch(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        await send(message)

    await app(scope, receive, watch)
    return status[0] if status else None
