"""HTTP transports: streamable HTTP (``/mcp``) and legacy SSE (``/sse`` + ``/messages/``).

`build_http_app` returns one Starlette (ASGI) app; `serve_http` runs it under
uvicorn. The app is safe by default:

* **Host/Origin checks** (DNS-rebinding protection) are always on, with an
  explicit allow-list: loopback (``127.0.0.1``, ``localhost``, ``[::1]``, any
  port or none), the bind host when it is a specific address, and every
  ``--allowed-host``/``--allowed-origin``. A foreign ``Host`` gets 421, a
  foreign ``Origin`` 403 (enforced by the SDK's transports).
* **Loopback unless authenticated.** Binding anything but loopback needs
  ``--auth-token`` (or ``--per-request-key``); otherwise `ConfigurationError`.
* **Bearer auth** (``--auth-token`` / ``DRIP_MCP_AUTH_TOKEN``): every request
  except ``GET /health`` needs ``Authorization: Bearer <token>`` (compared in
  constant time), else 401 ``{"error", "code": "UNAUTHORIZED"}``.
* **Per-request keys** (``--per-request-key``): each client sends its own Drip
  key as ``Authorization: Bearer pk_…/sk_…``. `_AuthMiddleware` resolves it to
  a `DripClient` from a bounded LRU `TenantPool` (keyed by the key's SHA-256;
  every tenant shares one ``httpx2.AsyncClient`` pool) and puts it in the
  `_current_client` context variable, which the server's ``resolve_client``
  reads. The SDK (mcp 2.3) snapshots the sender's contextvars with every
  message it queues to the session (``ContextSendStream``) and runs each
  handler in that snapshot, so the POST's tenant reaches the tool handler
  under streamable HTTP (stateful and stateless) and SSE alike (tests cover
  all three). The middleware also marks the request's principal
  (``scope["user"]``), so the SDK binds every MCP session (``Mcp-Session-Id``
  or SSE ``session_id``) to the key that opened it: another key gets 404.

Scaling out (``--workers N``, which needs ``--stateless``) runs uvicorn with
the import string ``drip_mcp.transports:app_factory``; each worker process
rebuilds settings and options from ``DRIP_MCP_HTTP_CONFIG`` (JSON, no secrets),
the key from ``DRIP_API_KEY``, the token from ``DRIP_MCP_AUTH_TOKEN`` and its
log level from ``DRIP_MCP_LOG_LEVEL``, which
`serve_http` sets before spawning them. See ``docs/deployment.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hmac
import json
import logging
import os
import signal
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2
from anyio.abc import TaskGroup
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from drip_mcp._version import __version__
from drip_mcp.client import DripClient, new_http_client
from drip_mcp.errors import ConfigurationError, DripError
from drip_mcp.hosts import is_loopback
from drip_mcp.keys import KEY_FORMAT_HINT, ApiKey
from drip_mcp.outbox import Drainer, Outbox, open_outbox
from drip_mcp.retrying import RetryPolicy
from drip_mcp.server import DripServer, banner, build_server, open_client, outbox_target
from drip_mcp.settings import Settings

__all__ = [
    "AUTH_TOKEN_ENV",
    "CONFIG_ENV",
    "GRACEFUL_SHUTDOWN_S",
    "TENANT_POOL_SIZE",
    "HttpOptions",
    "TenantPool",
    "app_factory",
    "build_http_app",
    "serve_http",
]

logger = logging.getLogger("drip_mcp.transports")

AUTH_TOKEN_ENV = "DRIP_MCP_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token
CONFIG_ENV = "DRIP_MCP_HTTP_CONFIG"
LOG_LEVEL_ENV = "DRIP_MCP_LOG_LEVEL"
TENANT_POOL_SIZE = 256
GRACEFUL_SHUTDOWN_S = 10.0
HEALTH_PATH = "/health"
SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"
TRANSPORTS = ("sse", "streamable-http")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names to recognise, not to bind


def _host_header_form(host: str) -> str:
    """How `host` appears in a ``Host`` header: IPv6 addresses in brackets."""
    name = host.strip()
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name


@dataclass(frozen=True)
class HttpOptions:
    """How to serve MCP over HTTP (flags of ``drip-mcp --transport sse|streamable-http``)."""

    transport: str = "streamable-http"
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    stateless: bool = False
    json_response: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    per_request_key: bool = False
    workers: int = 1

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> HttpOptions:
        """The options for parsed CLI flags; the token falls back to ``DRIP_MCP_AUTH_TOKEN``."""
        env = os.environ if environ is None else environ
        token = args.auth_token if args.auth_token else env.get(AUTH_TOKEN_ENV, "")
        return cls(
            transport=args.transport,
            host=args.host,
            port=args.port,
            path=args.path,
            stateless=args.stateless,
            json_response=args.json_response,
            allowed_hosts=tuple(args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
            auth_token=token.strip() or None,
            per_request_key=args.per_request_key,
            workers=args.workers,
        )

    def validate(self) -> None:
        """Raise `ConfigurationError` (saying how to fix it) for unsafe or inconsistent options."""
        if self.transport not in TRANSPORTS:
            raise ConfigurationError(f"--transport must be one of {', '.join(TRANSPORTS)} (got {self.transport!r})")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"--port must be between 0 and 65535 (got {self.port})")
        if self.workers < 1:
            raise ConfigurationError(f"--workers must be at least 1 (got {self.workers})")
        if self.transport == "streamable-http":
            if not self.path.startswith("/") or self.path.rstrip("/") in ("", HEALTH_PATH):
                raise ConfigurationError(f"--path must start with '/' and not be '/' or {HEALTH_PATH} ({self.path!r})")
        elif self.stateless or self.json_response:
            raise ConfigurationError(
                "--stateless and --json-response apply to --transport streamable-http only (SSE keeps a session)"
            )
        if self.workers > 1 and not (self.transport == "streamable-http" and self.stateless):
            raise ConfigurationError(
                "--workers > 1 needs --transport streamable-http --stateless (sessions live in one process; "
                "add --json-response too for plain JSON replies)"
            )
        if self.workers > 1 and self.port == 0:
            raise ConfigurationError("--workers > 1 needs an explicit --port (the workers share one listening socket)")
        if self.auth_token is not None and self.per_request_key:
            raise ConfigurationError(
                "--auth-token and --per-request-key both use the Authorization header: choose one "
                "(with --per-request-key every client authenticates with its own Drip key)"
            )
        if not is_loopback(self.host) and self.auth_token is None and not self.per_request_key:
            raise ConfigurationError(
                f"refusing to serve on non-loopback host {self.host!r} without authentication: pass --auth-token "
                f"(or set {AUTH_TOKEN_ENV}) or --per-request-key, or bind --host 127.0.0.1 "
                "(clients must also be allowed with --allowed-host/--allowed-origin; see docs/deployment.md)"
            )

    def transport_security(self) -> TransportSecuritySettings:
        """The explicit Host/Origin allow-list (DNS-rebinding protection is always on)."""
        hosts: list[str] = []
        origins: list[str] = []
        names = list(_LOOPBACK_HOSTS)
        bind = _host_header_form(self.host)
        if self.host.strip() not in _WILDCARD_HOSTS and bind.lower() not in names:
            names.append(bind)
        for name in names:
            hosts += [f"{name}:*", name]
            origins += [f"http://{name}:*", f"http://{name}", f"https://{name}:*", f"https://{name}"]
        for extra in self.allowed_hosts:
            value = extra.strip()
            if not value:
                continue
            has_port = "]:" in value if value.startswith("[") else ":" in value
            hosts += [value] if has_port else [value, f"{value}:*"]
        origins += [o.strip().rstrip("/") for o in self.allowed_origins if o.strip()]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(dict.fromkeys(hosts)),
            allowed_origins=list(dict.fromkeys(origins)),
        )

    @property
    def mcp_path(self) -> str:
        return self.path if self.transport == "streamable-http" else SSE_PATH


# --- tenants (per-request keys) ------------------------------------------------------------------

# The Drip client of the HTTP request being served (per-request-key mode); set by `_AuthMiddleware`.
_current_client: ContextVar[DripClient | None] = ContextVar("drip_mcp_current_client", default=None)


class TenantPool:
    """A bounded LRU of `DripClient`s, one per Drip key, all sharing one HTTP pool.

    With an `outbox` and a task group for `drainers`, each tenant's durable writes are persisted like
    a single-key server's, and a drainer per tenant delivers its queued rows while the tenant is in
    the pool. Rows are scoped by key, so a tenant evicted (or not yet seen since a restart) keeps its
    rows until it connects again: they are never sent with another tenant's key.
    """

    def __init__(
        self,
        settings: Settings,
        http: httpx2.AsyncClient,
        *,
        base_url: str | None = None,
        capacity: int = TENANT_POOL_SIZE,
        outbox: Outbox | None = None,
        drainers: TaskGroup | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._settings = settings
        self._http = http
        self._base_url = base_url or settings.base_url
        self.capacity = capacity
        self._clients: OrderedDict[str, DripClient] = OrderedDict()
        self._outbox = outbox
        self._drainers = drainers
        self._draining: dict[str, anyio.CancelScope] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def fingerprints(self) -> list[str]:
        """The stored keys' fingerprints, least recently used first."""
        return list(self._clients)

    def client_for(self, key: ApiKey) -> DripClient:
        """The client for `key` (made on first use; the least recently used one is dropped when full)."""
        fp = key.fingerprint
        client = self._clients.get(fp)
        if client is not None:
            self._clients.move_to_end(fp)
            return client
        if self._settings.sandbox and key.is_live:
            raise ConfigurationError("the sandbox takes test keys only (pk_test_... or sk_test_...)")
        client = DripClient(
            key,
            base_url=self._base_url,
            timeout=self._settings.timeout,
            retry=RetryPolicy(max_retries=self._settings.max_retries),
            http=self._http,
        )
        self._clients[fp] = client
        if self._outbox is not None:
            client.attach_outbox(self._outbox, target=outbox_target(self._settings))
            if self._drainers is not None:
                self._draining[fp] = _start_in(self._drainers, Drainer(self._outbox, client).run)
        while len(self._clients) > self.capacity:
            evicted, _ = self._clients.popitem(last=False)  # shares the pool: nothing to close
            if (drainer := self._draining.pop(evicted, None)) is not None:
                drainer.cancel()
        return client


def _start_in(group: TaskGroup, task: Callable[[], Awaitable[None]]) -> anyio.CancelScope:
    """Start `task` in `group`; return the scope that cancels just that task."""
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await task()

    group.start_soon(run)
    return scope


def _current_tenant() -> DripClient:
    client = _current_client.get()
    if client is None:
        raise DripError(
            "This request carries no Drip key.",
            code="UNAUTHORIZED",
            hint="Send Authorization: Bearer <your Drip pk_/sk_ key> with every request.",
        )
    return client


# --- ASGI middleware -----------------------------------------------------------------------------


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


async def _unauthorized(send: Send, message: str, *, invalid: bool) -> None:
    challenge = 'Bearer realm="drip-mcp"' + (', error="invalid_token"' if invalid else "")
    body = json.dumps({"error": message, "code": "UNAUTHORIZED"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _AuthMiddleware:
    """Pure ASGI (so streaming responses pass straight through): bearer token or per-request Drip key.

    ``/health`` is always open. Everything else needs the token (``--auth-token``)
    or a well-formed Drip key (``--per-request-key``); with neither configured
    the middleware only passes requests on.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, tenants: TenantHolder | None) -> None:
        self.app = app
        self._token = token.encode() if token is not None else None
        self._tenants = tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        if self._token is not None:
            if presented is None:
                await _unauthorized(send, "Missing bearer token: send Authorization: Bearer <token>.", invalid=False)
                return
            if not hmac.compare_digest(presented.encode(), self._token):
                await _unauthorized(send, "Invalid bearer token.", invalid=True)
                return
            await self.app(scope, receive, send)
            return
        if self._tenants is None:
            await self.app(scope, receive, send)
            return
        if presented is None:
            await _unauthorized(
                send, "Missing Drip key: send Authorization: Bearer <your Drip pk_/sk_ key>.", invalid=False
            )
            return
        try:
            key = ApiKey(presented)
        except ConfigurationError:  # its message would show part of the key: use our own
            await _unauthorized(send, f"Invalid Drip key in Authorization header: {KEY_FORMAT_HINT}.", invalid=True)
            return
        try:
            client = self._tenants.pool.client_for(key)
        except ConfigurationError as exc:  # e.g. a live key against the sandbox
            await _unauthorized(send, f"Drip key refused: {exc}.", invalid=True)
            return
        fp = key.fingerprint
        # The SDK binds each session to this principal: another key cannot use it (404).
        scope["user"] = AuthenticatedUser(
            AccessToken(token=fp, client_id=f"drip-key-{fp[:32]}", scopes=[key.type.value])
        )
        reset = _current_client.set(client)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_client.reset(reset)


class TenantHolder:
    """Where the lifespan puts the `TenantPool` once the HTTP pool is open."""

    def __init__(self) -> None:
        self._pool: TenantPool | None = None

    @property
    def pool(self) -> TenantPool:
        if self._pool is None:
            raise ConfigurationError("the server is not running (its lifespan has not started)")
        return self._pool

    @pool.setter
    def pool(self, value: TenantPool | None) -> None:
        self._pool = value


# --- the app -------------------------------------------------------------------------------------


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})


def build_http_app(
    settings: Settings,
    options: HttpOptions,
    *,
    client: DripClient | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Starlette:
    """The ASGI app serving MCP over `options.transport`, plus ``GET /health``.

    The Drip side is opened in the app's lifespan: `client` if given (the
    caller closes it), else per-request tenants (``options.per_request_key``)
    sharing one HTTP pool, else `open_client(settings)` (the embedded sandbox
    with ``settings.sandbox``). `transport` replaces the network for the Drip
    HTTP pool (tests). Raises `ConfigurationError` for unsafe options.
    """
    options.validate()
    if client is not None and options.per_request_key:
        raise ConfigurationError("a fixed client cannot be combined with --per-request-key")

    tenants = TenantHolder() if options.per_request_key else None
    fixed: list[DripClient] = [client] if client is not None else []

    def resolve_fixed() -> DripClient:
        if not fixed:
            raise DripError("drip-mcp is not running (its lifespan has not started).", code="INTERNAL_ERROR")
        return fixed[0]

    server = build_server(settings, resolve_client=_current_tenant if tenants is not None else resolve_fixed)
    security = options.transport_security()
    if options.transport == "streamable-http":
        inner = server.streamable_http_app(
            streamable_http_path=options.path,
            json_response=options.json_response,
            stateless_http=options.stateless,
            transport_security=security,
            host=options.host,
        )
    else:
        inner = server.sse_app(
            sse_path=SSE_PATH, message_path=MESSAGE_PATH, transport_security=security, host=options.host
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if tenants is not None:
                tenants.pool = await stack.enter_async_context(_tenant_pool(settings, transport))
                stack.callback(setattr, tenants, "pool", None)
            elif client is None:
                if transport is not None:
                    opened = await stack.enter_async_context(DripClient.from_settings(settings, transport=transport))
                else:
                    opened = await stack.enter_async_context(open_client(settings))
                fixed.append(opened)
                stack.callback(fixed.clear)
            if options.transport == "streamable-http":
                # Entered last, left first: sessions end before the Drip pool closes.
                await stack.enter_async_context(server.session_manager.run())
            yield
        logger.debug("HTTP transport stopped; Drip pool closed")

    routes: list[BaseRoute] = [Route(HEALTH_PATH, _health, methods=["GET"]), *inner.routes]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_AuthMiddleware, token=options.auth_token, tenants=tenants)],
        lifespan=lifespan,
    )
    app.state.drip_server = server
    app.state.drip_options = options
    return app


@asynccontextmanager
async def _tenant_pool(settings: Settings, transport: httpx2.AsyncBaseTransport | None) -> AsyncIterator[TenantPool]:
    """One shared HTTP pool for every tenant: the embedded sandbox's, `transport`'s or the network's."""
    async with AsyncExitStack() as stack:
        if transport is None and settings.sandbox:
            # The sandbox always has a (default) key, so open_client gives its pool, base URL and outbox.
            base = await stack.enter_async_context(open_client(settings, drain=False))
            http, base_url, outbox = base.http, base.base_url, base.outbox
        else:
            http, base_url = new_http_client(timeout=settings.timeout, transport=transport), None
            stack.push_async_callback(http.aclose)
            outbox = stack.enter_context(open_outbox(settings.outbox)) if settings.outbox is not None else None
        drainers = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(drainers.cancel_scope.cancel)
        yield TenantPool(settings, http, base_url=base_url, outbox=outbox, drainers=drainers)


# --- serving -------------------------------------------------------------------------------------


def _startup_line(settings: Settings, options: HttpOptions, server: DripServer, port: int) -> str:
    host = _host_header_form(options.host)
    if options.per_request_key:
        target = f"sandbox (db: {settings.sandbox_db})" if settings.sandbox else settings.base_url
        head = f"drip-mcp {__version__}: {options.transport} -> {target}; per-request keys"
    else:
        head = banner(settings, server, options.transport)
    auth = "bearer token required" if options.auth_token else ""
    tail = "; ".join(p for p in (f"listening on http://{host}:{port}{options.mcp_path}", auth) if p)
    return f"{head}; {tail}"


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return {"$path": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$path":
            return Path(inner)
        if tag == "$decimal":
            return Decimal(inner)
        if tag == "$tuple":
            return tuple(_decode(v) for v in inner)
    return value


def _export_config(settings: Settings, options: HttpOptions, environ: MutableMapping[str, str]) -> None:
    """Put what a worker needs into `environ`: JSON without secrets, key and token in their own variables."""
    data = {
        "settings": {f.name: _encode(getattr(settings, f.name)) for f in dataclasses.fields(settings)},
        "options": {f.name: _encode(getattr(options, f.name)) for f in dataclasses.fields(options)},
    }
    data["settings"].pop("api_key")
    data["options"].pop("auth_token")
    environ[CONFIG_ENV] = json.dumps(data)
    if settings.api_key is not None:
        environ["DRIP_API_KEY"] = settings.api_key.reveal()
    else:
        environ.pop("DRIP_API_KEY", None)
    environ[LOG_LEVEL_ENV] = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    if options.auth_token is not None:
        environ[AUTH_TOKEN_ENV] = options.auth_token
    else:
        environ.pop(AUTH_TOKEN_ENV, None)


def _import_config(environ: Mapping[str, str]) -> tuple[Settings, HttpOptions]:
    raw = environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigurationError(f"{CONFIG_ENV} is not set: start workers with `drip-mcp --workers N ...`")
    data = json.loads(raw)
    key = environ.get("DRIP_API_KEY", "").strip()
    settings = Settings(api_key=ApiKey(key) if key else None, **{k: _decode(v) for k, v in data["settings"].items()})
    token = environ.get(AUTH_TOKEN_ENV, "").strip() or None
    options = HttpOptions(auth_token=token, **{k: _decode(v) for k, v in data["options"].items()})
    return settings, options


def app_factory() -> Starlette:
    """uvicorn ``--factory`` entry for worker processes (``drip_mcp.transports:app_factory``).

    Reads ``DRIP_MCP_HTTP_CONFIG``, ``DRIP_API_KEY``, ``DRIP_MCP_AUTH_TOKEN`` and
    ``DRIP_MCP_LOG_LEVEL``, which `serve_http` sets before spawning the workers.
    """
    from drip_mcp.logs import configure_logging

    settings, options = _import_config(os.environ)
    secrets = [settings.api_key.reveal() if settings.api_key else "", options.auth_token or ""]
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "WARNING"), secrets=secrets)
    return build_http_app(settings, options)


def _no_op_handler(signum: int, frame: object) -> None:
    """Stands in for SIGTERM's default while uvicorn serves: it re-raises the signal after draining."""


def serve_http(settings: Settings, options: HttpOptions) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get `GRACEFUL_SHUTDOWN_S` to finish.

    Prints one line on stderr once listening (with the real port when ``--port 0``).
    A SIGTERM shutdown returns normally (exit 0); SIGINT ends in KeyboardInterrupt (exit 130).
    """
    import asyncio

    import uvicorn

    options.validate()
    common: dict[str, Any] = {
        "host": options.host.strip("[]"),
        "port": options.port,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "ws": "none",
        "server_header": False,
    }
    if options.workers > 1:
        _export_config(settings, options, os.environ)
        print(
            f"drip-mcp {__version__}: {options.transport} with {options.workers} workers; listening on "
            f"http://{_host_header_form(options.host)}:{options.port}{options.mcp_path}",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run("drip_mcp.transports:app_factory", factory=True, workers=options.workers, **common)
        return

    app = build_http_app(settings, options)
    server_obj: DripServer = app.state.drip_server

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.should_exit and self.servers:
                port = self.servers[0].sockets[0].getsockname()[1]
                print(_startup_line(settings, options, server_obj, port), file=sys.stderr, flush=True)

    server = AnnouncingServer(uvicorn.Config(app, **common))
    previous = signal.signal(signal.SIGTERM, _no_op_handler)
    try:
        asyncio.run(server.serve())
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        raise ConfigurationError(f"the HTTP server on {options.host}:{options.port} did not start (see above)")
