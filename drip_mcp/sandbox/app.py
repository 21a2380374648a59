"""`Sandbox`: the Drip-compatible local API as one Starlette app over one `Store`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import anyio
import httpx2
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from drip_mcp.sandbox import (
    billing,
    caps,
    charges,
    checkout,
    contracts,
    customers,
    entitlements,
    events,
    payouts,
    plans,
    runs,
    subscriptions,
    webhooks,
)
from drip_mcp.sandbox.config import SandboxConfig
from drip_mcp.sandbox.delivery import DeliveryWorker
from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.faults import ConnectionDropper, DroppedConnection, FaultInjector, raise_dropped
from drip_mcp.sandbox.settle import SettlementWorker
from drip_mcp.sandbox.store import Store
from drip_mcp.sandbox.web import error_response

logger = logging.getLogger(__name__)

__all__ = ["Sandbox", "Services"]


@dataclass(frozen=True)
class Services:
    """What the routes use: the store, the delivery worker and the configuration."""

    store: Store
    deliveries: DeliveryWorker
    config: SandboxConfig

    def public_base_url(self, request: Request) -> str:
        """The URL the sandbox is reached at (configured, else the request's), without a trailing slash."""
        return (self.config.public_base_url or str(request.base_url)).rstrip("/")


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "healthy", "timestamp": int(time.time() * 1000)})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(ApiError(exc.status_code, code, message, headers=dict(exc.headers or {})))


class _InProcessTransport(httpx2.AsyncBaseTransport):
    """`httpx2.ASGITransport` over the app, with dropped connections surfacing as network errors."""

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx2.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._inner.handle_async_request(request)
        except DroppedConnection as exc:
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        except Exception:
            # What uvicorn would answer for a crashed handler: a 500, not an exception in the caller.
            logger.exception("sandbox handler failed for %s %s", request.method, request.url.path)
            return httpx2.Response(
                500, json={"error": "The sandbox failed to handle this request.", "code": "INTERNAL_ERROR"}
            )

    async def aclose(self) -> None:
        await self._inner.aclose()


class Sandbox:
    """A Drip-compatible API on SQLite, usable in-process or served by `serve`.

    `app` answers requests whether or not the sandbox was entered. Webhook
    deliveries go out only while a delivery worker runs: inside
    ``async with sandbox:`` or while the app's lifespan runs (under uvicorn);
    otherwise they wait in the store as PENDING. `delivery_transport` replaces
    the network for deliveries (tests inject an ``httpx2.MockTransport``);
    `connection_dropper` says how a "dropped connection" fault is carried out
    (`serve` passes a socket-level one).
    """

    def __init__(
        self,
        config: SandboxConfig = SandboxConfig(),  # noqa: B008 (frozen, so sharing the default is safe)
        *,
        delivery_transport: httpx2.AsyncBaseTransport | None = None,
        connection_dropper: ConnectionDropper = raise_dropped,
    ) -> None:
        self.config = config
        self.store = Store(config.db_path, starting_balance_usdc=config.starting_balance_usdc)
        self.deliveries = DeliveryWorker(
            self.store, retry_delays_s=config.webhook_retry_delays_s, transport=delivery_transport
        )
        self.settlement = SettlementWorker(self.store)
        self._worker_group: TaskGroup | None = None
        middleware = []
        if config.faults is not None:
            middleware.append(Middleware(FaultInjector, config=config.faults, dropper=connection_dropper))
        self.app = Starlette(
            routes=[
                Route("/health", _health, methods=["GET"]),
                Mount(
                    "/v1",
                    routes=[
                        *customers.routes,
                        *billing.routes,
                        *runs.routes,
                        *webhooks.routes,
                        *checkout.api_routes,
                        *charges.routes,  # sandbox-a: async usage, quota, refunds
                        *caps.routes,  # sandbox-a
                        *contracts.routes,  # sandbox-a
                        *plans.routes,  # sandbox-a
                        *payouts.routes,  # sandbox-a: withdrawals, portal sessions
                        *entitlements.routes,
                        *subscriptions.routes,
                        *events.routes,
                    ],
                ),
                *checkout.page_routes,
            ],
            middleware=middleware,
            exception_handlers={HTTPException: _http_error},
            lifespan=self._lifespan,
        )
        self.app.state.services = Services(self.store, self.deliveries, config)

    def transport(self) -> httpx2.AsyncBaseTransport:
        """An in-process transport over `app` for ``httpx2.AsyncClient(transport=...)``."""
        return _InProcessTransport(self.app)

    async def _start_worker(self) -> bool:
        if self._worker_group is not None:
            return False
        group = anyio.create_task_group()
        await group.__aenter__()
        group.start_soon(self.deliveries.run)
        group.start_soon(self.settlement.run)
        self._worker_group = group
        return True

    async def _stop_worker(self) -> None:
        group, self._worker_group = self._worker_group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        started = await self._start_worker()
        try:
            yield
        finally:
            if started:
                await self._stop_worker()

    async def __aenter__(self) -> Sandbox:
        await self._start_worker()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop_worker()
        self.store.close()
