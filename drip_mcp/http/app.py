"""The ASGI app: MCP over streamable HTTP (``/mcp``) or legacy SSE (``/sse`` + ``/messages/``), plus ``/health``.

`build_http_app` returns one Starlette app with the options' Host/Origin
allow-list (`drip_mcp.http.options`) and authentication
(`drip_mcp.http.auth`, or OAuth resource-server mode in
`drip_mcp.http.oauth`, which adds the RFC 9728 metadata routes); the Drip side is opened in its lifespan through
`drip_mcp.runtime`. `drip_mcp.http.serve` runs it under uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from drip_mcp._version import __version__
from drip_mcp.api.client import DripClient
from drip_mcp.errors import ConfigurationError, DripError
from drip_mcp.http.auth import AuthMiddleware
from drip_mcp.http.oauth import JwksCache, JwtVerifier, OAuthMiddleware, current_gate, metadata_routes
from drip_mcp.http.options import HEALTH_PATH, MESSAGE_PATH, SSE_PATH, HttpOptions, LowercaseHostHeaders
from drip_mcp.http.sessions import DEFAULT_SESSION_IDLE_S, KeyCheck, SessionLimits, TenantSessions
from drip_mcp.http.tenants import TenantHolder, current_tenant
from drip_mcp.runtime import open_client, open_tenant_pool, warn_if_unreachable
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.state.holder import StateSlot
from drip_mcp.state.opening import open_state
from drip_mcp.tools.context import Services

__all__ = ["build_http_app"]

logger = logging.getLogger("drip_mcp.http")


async def _health(request: Request) -> JSONResponse:
    """Answers any ``Host`` (load balancers probe by IP); only an allowed caller learns the version."""
    options: HttpOptions = request.app.state.drip_options
    body = {"status": "ok"}
    if options.allows(request.headers.get("host"), request.headers.get("origin")):
        body["version"] = __version__
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _session_limits(settings: Settings, options: HttpOptions, tenants: TenantHolder | None) -> list[Middleware]:
    """Per-tenant session caps (and, with per-request keys, a Drip check of each key): stateful streamable HTTP's
    sessions, or legacy SSE's streams."""
    if options.transport == "streamable-http" and options.stateless:
        return []
    sse = options.transport == "sse"
    return [
        Middleware(
            SessionLimits,
            path=SSE_PATH if sse else options.path,
            sse=sse,
            sessions=TenantSessions(limit=settings.max_sessions_per_tenant, idle_s=DEFAULT_SESSION_IDLE_S),
            key_check=KeyCheck() if tenants is not None else None,
            tenant_client=current_tenant if tenants is not None else None,
        )
    ]


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

    state = StateSlot()  # filled by the lifespan: state is per tenant, shared with every process of the store
    server = build_server(
        settings,
        resolve_client=current_tenant if tenants is not None else resolve_fixed,
        services=Services.for_settings(settings, state),
        tool_gate=current_gate if options.oauth else None,
    )
    security = options.transport_security()
    if options.transport == "streamable-http":
        inner = server.streamable_http_app(
            streamable_http_path=options.path,
            json_response=options.json_response,
            stateless_http=options.stateless,
            transport_security=security,
            host=options.host,
            session_idle_timeout=DEFAULT_SESSION_IDLE_S,
        )
    else:
        inner = server.sse_app(
            sse_path=SSE_PATH, message_path=MESSAGE_PATH, transport_security=security, host=options.host
        )

    jwks: JwksCache | None = None
    middleware = Middleware(AuthMiddleware, token=options.auth_token, tenants=tenants)
    extra_routes: list[BaseRoute] = []
    if options.oauth_issuer is not None and options.oauth_audience is not None:
        jwks = JwksCache(options.oauth_issuer, options.oauth_jwks_url)
        verifier = JwtVerifier(options.oauth_issuer, options.oauth_audience, jwks)
        middleware = Middleware(OAuthMiddleware, verifier=verifier, mcp_path=options.mcp_path, security=security)
        extra_routes = metadata_routes(
            issuer=options.oauth_issuer, audience=options.oauth_audience, mcp_path=options.mcp_path, security=security
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if jwks is not None:
                await stack.enter_async_context(jwks.open())
            store = await stack.enter_async_context(open_state(settings))
            state.fill(store)
            stack.callback(state.empty)
            if tenants is not None:
                tenants.pool = await stack.enter_async_context(open_tenant_pool(settings, transport, store=store))
                stack.callback(setattr, tenants, "pool", None)
            elif client is None:
                if transport is not None:
                    opened = await stack.enter_async_context(DripClient.from_settings(settings, transport=transport))
                else:
                    opened = await stack.enter_async_context(open_client(settings, store=store))
                fixed.append(opened)
                stack.callback(fixed.clear)
                checks = await stack.enter_async_context(anyio.create_task_group())
                checks.start_soon(warn_if_unreachable, opened, settings)
                stack.callback(checks.cancel_scope.cancel)
            if options.transport == "streamable-http":
                # Entered last, left first: sessions end before the Drip pool closes.
                await stack.enter_async_context(server.session_manager.run())
            yield
        logger.debug("HTTP transport stopped; Drip pool closed")

    routes: list[BaseRoute] = [Route(HEALTH_PATH, _health, methods=["GET"]), *extra_routes, *inner.routes]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(LowercaseHostHeaders),  # host names compare case-insensitively
            middleware,  # bearer token, per-request keys or OAuth
            *_session_limits(settings, options, tenants),
        ],
        lifespan=lifespan,
    )
    app.state.drip_server = server
    app.state.drip_options = options
    return app
