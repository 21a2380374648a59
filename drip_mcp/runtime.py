"""The one place that opens the Drip side from `Settings`.

* `open_client`: the Drip client for the server's own key, against the real API
  or the embedded sandbox (in-process, no socket), with the durable outbox and
  a background drainer when ``settings.outbox`` is set;
* `open_tenant_pool`: for per-request keys over HTTP, one shared HTTP pool (the
  sandbox's, an injected transport's or the network's), the outbox, and a
  `TenantPool` that makes one client (and drainer) per tenant key.

Every `DripClient` built here gets its outbox sender at construction: nothing
is attached or changed afterwards.

Given a state store (`drip_mcp.state`) whose ``outbox`` is shared (PostgreSQL,
``--state-url``), durable writes go there instead of the SQLite outbox file, and
`TenantPool` can deliver a per-request-key tenant's stranded rows while it is not
connected: with ``DRIP_MCP_STATE_KEY`` each tenant's key is stored sealed
(`drip_mcp.state.sealing`) and `TenantPool.adopt_stranded` opens a client for any
tenant whose rows wait.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import httpx2
from anyio.abc import TaskGroup

from drip_mcp.api.client import DripClient, new_http_client
from drip_mcp.api.durable import Drainer, OutboxSender
from drip_mcp.api.outbox import Outbox, open_outbox, outbox_scope
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.errors import ConfigurationError, DripError
from drip_mcp.keys import ApiKey
from drip_mcp.paths import ensure_private_dir, secure_state_dir
from drip_mcp.settings import Settings, check_key_transport
from drip_mcp.state.base import OutboxStore, StateStore
from drip_mcp.state.sealing import KeySealer

if TYPE_CHECKING:
    from drip_mcp.sandbox import Sandbox

__all__ = [
    "REACHABILITY_TIMEOUT_S",
    "SANDBOX_BASE_URL",
    "TENANT_POOL_SIZE",
    "TenantPool",
    "open_client",
    "open_tenant_pool",
    "outbox_target",
    "warn_if_unreachable",
]

logger = logging.getLogger("drip_mcp.runtime")

# The embedded sandbox answers in-process: this URL never leaves the process.
SANDBOX_BASE_URL = "http://sandbox.local/v1"
TENANT_POOL_SIZE = 256
# How long the start-up reachability check waits for Drip before it warns (serving never waits for it).
REACHABILITY_TIMEOUT_S = 5.0
# How long after start-up it begins: building the HTTP pool costs ~40 ms of CPU (lazy imports, the TLS
# context), which must not delay the client's handshake. A tool call that comes first builds the pool.
REACHABILITY_DELAY_S = 1.0


def outbox_target(settings: Settings) -> str:
    """What outbox rows are scoped to besides the key: the sandbox database, else the base URL."""
    if settings.sandbox and settings.sandbox_db:
        return f"sandbox:{settings.sandbox_db.resolve()}"
    return settings.base_url


def _sender(outbox: Outbox | OutboxStore | None, settings: Settings, key: ApiKey) -> OutboxSender | None:
    return None if outbox is None else OutboxSender(outbox, outbox_scope(outbox_target(settings), key))


def _secure_state_dir(settings: Settings) -> None:
    """The state directory 0700 (also when it existed looser), refused if another user's; when it is used."""
    used = (p for p in (settings.outbox, settings.sandbox_db) if p is not None)
    if settings.state_dir.exists() or any(p.parent == settings.state_dir for p in used):
        secure_state_dir(settings.state_dir)


def _open_outbox(stack: AsyncExitStack, settings: Settings, store: StateStore | None) -> Outbox | OutboxStore | None:
    """The store's shared outbox (``--state-url``), else the SQLite outbox file (``settings.outbox``), else None."""
    if store is not None and store.outbox is not None and settings.outbox is not None:
        return store.outbox
    return stack.enter_context(open_outbox(settings.outbox)) if settings.outbox is not None else None


@asynccontextmanager
async def _embedded_sandbox(settings: Settings) -> AsyncIterator[Sandbox]:
    assert settings.sandbox_db is not None
    ensure_private_dir(settings.sandbox_db.parent)
    from drip_mcp.sandbox import FaultConfig, Sandbox, SandboxConfig  # only with --sandbox (start-up time)

    faults = FaultConfig.from_env(settings.sandbox_faults)
    config = SandboxConfig(
        db_path=settings.sandbox_db, faults=faults, webhook_allowed_hosts=settings.sandbox_webhook_hosts
    )
    async with Sandbox(config) as sandbox:
        yield sandbox


@asynccontextmanager
async def open_client(
    settings: Settings, *, drain: bool = True, store: StateStore | None = None
) -> AsyncIterator[DripClient]:
    """The Drip client for `settings`: the real API, or the embedded sandbox (in-process, no socket).

    With `settings.outbox` set, durable writes go through that outbox (the `store`'s shared one when it has
    one) and, when `drain`, a background drainer delivers its pending rows for as long as the client is open.
    """
    if settings.api_key is None:
        raise ConfigurationError("DRIP_API_KEY is not set")
    _secure_state_dir(settings)
    async with AsyncExitStack() as stack:
        outbox = _open_outbox(stack, settings, store)
        durable = _sender(outbox, settings, settings.api_key)
        if settings.sandbox:
            sandbox = await stack.enter_async_context(_embedded_sandbox(settings))
            client = DripClient.from_settings(
                settings, transport=sandbox.transport(), base_url=SANDBOX_BASE_URL, durable=durable
            )
        else:
            client = DripClient.from_settings(settings, durable=durable)
        await stack.enter_async_context(client)
        if durable is not None and drain:
            group = await stack.enter_async_context(anyio.create_task_group())
            group.start_soon(Drainer(client).run)
            stack.callback(group.cancel_scope.cancel)
        yield client


async def warn_if_unreachable(client: DripClient, settings: Settings, *, delay_s: float = REACHABILITY_DELAY_S) -> None:
    """Start-up check (run it in the background): one line on stderr when Drip's ``/health`` does not answer.

    It starts `delay_s` after it is scheduled (see `REACHABILITY_DELAY_S`). Nothing for the embedded
    sandbox, nor when Drip answers (whatever its status).
    """
    if settings.sandbox:
        return
    await anyio.sleep(delay_s)
    reason = f"no answer within {REACHABILITY_TIMEOUT_S:g} s"
    with anyio.move_on_after(REACHABILITY_TIMEOUT_S):
        try:
            await client.health()
            return
        except DripError as exc:
            reason = exc.code
    print(
        f"drip-mcp: warning: the Drip API at {client.base_url} is unreachable ({reason}); serving anyway, "
        "and tool calls fail until it answers",
        file=sys.stderr,
        flush=True,
    )


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
        outbox: Outbox | OutboxStore | None = None,
        drainers: TaskGroup | None = None,
        store: StateStore | None = None,
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
        self._store = store
        self._sealer = KeySealer(settings.state_key) if settings.state_key and store is not None else None

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
        if key.is_live and self._base_url == self._settings.base_url:
            check_key_transport(key, self._base_url)  # never a live key over plain HTTP
        client = DripClient(
            key,
            base_url=self._base_url,
            timeout=self._settings.timeout,
            retry=RetryPolicy(max_retries=self._settings.max_retries),
            http=self._http,
            durable=_sender(self._outbox, self._settings, key),
        )
        self._clients[fp] = client
        if client.durable is not None and self._drainers is not None:
            self._draining[fp] = _start_in(self._drainers, Drainer(client).run)
            if self._sealer is not None and self._store is not None:
                self._drainers.start_soon(self._store.save_tenant_key, fp, self._sealer.seal(fp, key.reveal()))
        while len(self._clients) > self.capacity:
            evicted, _ = self._clients.popitem(last=False)  # shares the pool: nothing to close
            if (drainer := self._draining.pop(evicted, None)) is not None:
                drainer.cancel()
        return client

    async def adopt_stranded(self, *, interval_s: float = 5.0) -> None:
        """Every `interval_s`, open a client (and so a drainer) for each tenant whose rows wait, until cancelled.

        Needs a shared outbox and ``DRIP_MCP_STATE_KEY``: the tenant's sealed key is read from the store. A
        tenant whose key was never stored (or was sealed under another operator key) keeps waiting.
        """
        outbox = None if isinstance(self._outbox, Outbox) else self._outbox  # a file's rows stay on its host
        if self._sealer is None or self._store is None or outbox is None:
            return
        prefix = f"{outbox_target(self._settings)}|"
        while True:
            try:
                for scope in await outbox.waiting_scopes():
                    fp = scope.removeprefix(prefix)
                    if scope.startswith(prefix) and fp not in self._clients:
                        sealed = await self._store.tenant_key(fp)
                        secret = self._sealer.open(fp, sealed) if sealed is not None else None
                        if secret is not None:
                            self.client_for(ApiKey(secret))
            except Exception:
                logger.exception("adopting stranded outbox rows failed; retrying")
            await anyio.sleep(interval_s)


def _start_in(group: TaskGroup, task: Callable[[], Awaitable[None]]) -> anyio.CancelScope:
    """Start `task` in `group`; return the scope that cancels just that task."""
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await task()

    group.start_soon(run)
    return scope


@asynccontextmanager
async def open_tenant_pool(
    settings: Settings, transport: httpx2.AsyncBaseTransport | None = None, *, store: StateStore | None = None
) -> AsyncIterator[TenantPool]:
    """One shared HTTP pool for every tenant: the embedded sandbox's, `transport`'s or the network's.

    With a `store` that has a shared outbox, tenants' durable writes go there, and stranded rows are adopted
    (`TenantPool.adopt_stranded`) when ``DRIP_MCP_STATE_KEY`` is set.
    """
    _secure_state_dir(settings)
    async with AsyncExitStack() as stack:
        outbox = _open_outbox(stack, settings, store)
        base_url: str | None = None
        if transport is None and settings.sandbox:
            sandbox = await stack.enter_async_context(_embedded_sandbox(settings))
            transport, base_url = sandbox.transport(), SANDBOX_BASE_URL
        http = new_http_client(timeout=settings.timeout, transport=transport)
        stack.push_async_callback(http.aclose)
        drainers = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(drainers.cancel_scope.cancel)
        pool = TenantPool(settings, http, base_url=base_url, outbox=outbox, drainers=drainers, store=store)
        drainers.start_soon(pool.adopt_stranded)
        yield pool
