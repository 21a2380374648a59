"""`DripClient`: the only module that speaks HTTP to Drip.

It owns four policies, each in one place:

* **Scope guard.** Every route is declared once in `drip_mcp.api.endpoints`
  with the key type it needs. A public (``pk_``) key on a secret-only endpoint
  raises `PublicKeyNotAllowedError` before any request is built.
* **Retries.** `drip_mcp.api.retrying` decides what is retried and how long to
  wait, within one deadline per logical call (`DripClient.deadline`); this
  module only loops and keeps the clock.
* **Idempotency.** Every mutating call carries ``idempotencyKey`` in its JSON
  body. A caller's key is used verbatim; otherwise one is made once per logical
  call, before the retry loop, reused by every attempt and returned in `Reply`.
* **Errors.** httpx2 exceptions and HTTP error statuses become `DripError`s at
  one boundary (`_translate_transport_errors` and `error_from_response`). Every
  error that leaves a logical call passes one exit (`DripClient._sealed`): it
  carries the call's idempotency key (a write's errors always do) and no echo
  of the API key (`drip_mcp.masking`).

Durable writes (``durable=True``) are handed to the `DurableSend` the client
was built with (`drip_mcp.api.durable.OutboxSender`), which stores them before
the send and settles them after; without one they are plain sends.

The HTTP pool (`httpx2.AsyncClient`) may be shared by several `DripClient`s
(one per tenant key in hosted mode): authentication is added per request, never
stored on the pool.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import anyio
import httpx2
from pydantic import BaseModel

from drip_mcp._version import __version__
from drip_mcp.api.endpoints import ENDPOINTS, Endpoint, matches_route, path_segment
from drip_mcp.api.retrying import (
    RetryPolicy,
    is_retryable_status,
    next_delay,
    parse_retry_after,
    sleeping_enabled,
)
from drip_mcp.api.routes import DripRoutes, Page, Reply
from drip_mcp.api.wire import (
    encode_body,
    error_from_response,
    new_idempotency_key,
    parse_body,
    query_value,
    to_camel,
)
from drip_mcp.errors import (
    ConfigurationError,
    DripConnectionError,
    DripError,
    DripTimeoutError,
    InvalidInputError,
    InvalidResponseError,
    PublicKeyNotAllowedError,
)
from drip_mcp.keys import ApiKey, KeyType
from drip_mcp.masking import SecretMasker
from drip_mcp.settings import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Settings, call_deadline

__all__ = ["DripClient", "DurableSend", "Page", "PreparedRequest", "Reply", "new_http_client"]

logger = logging.getLogger("drip_mcp.api.client")

USER_AGENT = f"drip-mcp/{__version__}"
T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

WRITE_MAY_HAVE_LANDED_HINT = (
    "Drip answered, but its reply could not be read, so the write may have been applied. "
    "Retry with the same idempotency_key: Drip then returns the original result instead of applying it twice."
)


@dataclass(frozen=True)
class PreparedRequest:
    """A mutating request, built and keyed, as a durable sender stores it."""

    endpoint: Endpoint
    path: str
    body: bytes
    idempotency_key: str


class DurableSend(Protocol):
    """Stores a prepared write before `send` runs and settles it after (see `drip_mcp.api.durable`)."""

    async def __call__(self, request: PreparedRequest, send: Callable[[], Awaitable[Any]]) -> Any: ...


def new_http_client(
    *, timeout: float = DEFAULT_TIMEOUT, transport: httpx2.AsyncBaseTransport | None = None
) -> httpx2.AsyncClient:
    """The pooled HTTP client (one per process); carries no credentials."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(timeout),
        transport=transport,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
    )


@asynccontextmanager
async def _translate_transport_errors(endpoint: Endpoint) -> AsyncIterator[None]:
    """The single boundary where httpx2 exceptions become `DripError`s."""
    try:
        yield
    except httpx2.TimeoutException as exc:
        raise DripTimeoutError(f"Drip did not answer {endpoint.name} in time ({type(exc).__name__})") from exc
    except httpx2.TransportError as exc:
        raise DripConnectionError(f"Could not reach Drip for {endpoint.name} ({type(exc).__name__})") from exc


class DripClient(DripRoutes):
    """Async client for the Drip API, scoped by the key it holds.

    Arguments beat settings: ``DripClient(key, base_url=...)`` uses exactly what
    it is given; `DripClient.from_settings` takes everything from `Settings`.
    Pass ``transport`` (``httpx2.MockTransport``, the sandbox's transport) in
    tests, or ``http`` to share one pool between several clients; ``durable``
    stores ``durable=True`` writes before they are sent (an outbox). ``sleep``
    and ``clock`` (monotonic seconds) are injectable so tests can record waits
    and move time. One logical call lasts at most `deadline` seconds:
    ``retry.deadline``, else ``timeout × (retry.max_retries + 1)``.
    """

    def __init__(
        self,
        api_key: ApiKey,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        http: httpx2.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        durable: DurableSend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self.retry = retry or RetryPolicy()
        self._owns_http = http is None
        self._http = http
        self._timeout, self._transport = timeout, transport
        self._auth = {"Authorization": f"Bearer {api_key.reveal()}"}
        self._sleep = sleep
        self._clock = clock
        self.deadline = (
            self.retry.deadline if self.retry.deadline is not None else call_deadline(timeout, self.retry.max_retries)
        )
        self._masker = SecretMasker([api_key.reveal()])
        self.durable = durable

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        http: httpx2.AsyncClient | None = None,
        base_url: str | None = None,
        durable: DurableSend | None = None,
    ) -> DripClient:
        """A client for `settings`' key, timeout and retries (`base_url` overrides the settings' one)."""
        if settings.api_key is None:
            raise ConfigurationError("DRIP_API_KEY is not set")
        return cls(
            settings.api_key,
            base_url=base_url or settings.base_url,
            timeout=settings.timeout,
            retry=RetryPolicy(max_retries=settings.max_retries),
            transport=transport,
            http=http,
            durable=durable,
        )

    @property
    def http(self) -> httpx2.AsyncClient:
        """The HTTP pool, built on first use (its TLS setup costs ~40 ms that a cold start need not pay)."""
        if self._http is None:
            self._http = new_http_client(timeout=self._timeout, transport=self._transport)
        return self._http

    @property
    def key_type(self) -> KeyType:
        return self._key.type

    @property
    def api_key(self) -> ApiKey:
        return self._key

    def allows(self, endpoint: Endpoint | str) -> bool:
        """Whether this client's key may call `endpoint`."""
        ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
        return ep.scope is KeyType.PUBLIC or self._key.type is KeyType.SECRET

    def __repr__(self) -> str:
        return f"DripClient(key={self._key.masked!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> DripClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the one request path ----------------------------------------------------------------

    async def request(
        self,
        endpoint: Endpoint | str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> tuple[Any, str | None]:
        """Send one logical call (with retries); return the parsed body and the idempotency key used.

        With ``durable=True`` a mutating call goes through the client's `DurableSend` (stored first;
        see `drip_mcp.api.durable`), which may raise `Queued` instead of a retryable error.
        """
        return await self._call(
            endpoint,
            _as_is,
            path_params=path_params,
            params=params,
            body=body,
            idempotency_key=idempotency_key,
            durable=durable,
        )

    async def _call(
        self,
        endpoint: Endpoint | str,
        parse: Callable[[Any], R],
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> tuple[R, str | None]:
        """`request`, with the reply parsed by `parse` inside the call, so its errors carry the key too."""
        ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
        if not self.allows(ep):
            raise PublicKeyNotAllowedError(ep.name)
        key = (idempotency_key or new_idempotency_key(ep.key_prefix)) if ep.mutating else None
        with self._sealed(key):
            content = encode_body({**(body or {}), "idempotencyKey": key}) if key is not None else None
            path = ep.path.format_map({k: path_segment(v) for k, v in (path_params or {}).items()})
            url = (self.root_url if ep.name == "health" else self.base_url) + path
            query = {to_camel(k): query_value(v) for k, v in (params or {}).items() if v is not None}
            headers = {**self._auth, "Content-Type": "application/json"} if content is not None else self._auth

            async def send() -> Any:
                return await self._send(ep, url, content, query, headers, key, self.retry.max_retries)

            if durable and self.durable is not None and key is not None and content is not None:
                data = await self.durable(PreparedRequest(ep, path, content, key), send)
            else:
                data = await send()
            return parse(data), key

    @contextmanager
    def _sealed(self, key: str | None) -> Iterator[None]:
        """The one exit for a logical call's errors: they carry its idempotency key and no echo of a secret.

        An unreadable reply to a write (`InvalidResponseError`) is retryable: the write may have
        been applied, and a retry with the same key returns the original result.
        """
        try:
            yield
        except DripError as exc:
            if key is not None:
                if exc.idempotency_key is None:
                    exc.idempotency_key = key
                if isinstance(exc, InvalidResponseError):
                    exc.retryable = True
                    exc.hint = WRITE_MAY_HAVE_LANDED_HINT
            self._mask_error(exc)
            raise

    def _mask_error(self, exc: DripError) -> None:
        masked = self._masker.mask_text(exc.message)
        if masked != exc.message:
            exc.message = masked
            exc.args = (masked,)
        exc.details = self._masker.mask(exc.details)
        exc.body = self._masker.mask(exc.body)

    async def replay(self, *, endpoint: str, path: str, body: bytes) -> Any:
        """One attempt (no retries) at a stored outbox request; return the parsed body."""
        ep = ENDPOINTS[endpoint]
        if not self.allows(ep):
            raise PublicKeyNotAllowedError(ep.name)
        if not matches_route(ep.path, path):
            raise InvalidInputError(f"stored path {path!r} does not match {ep.name}")
        key = json.loads(body).get("idempotencyKey")
        headers = {**self._auth, "Content-Type": "application/json"}
        with self._sealed(key if isinstance(key, str) else None):
            return await self._send(ep, self.base_url + path, body, {}, headers, key, 0)

    async def _send(
        self,
        ep: Endpoint,
        url: str,
        content: bytes | None,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        key: str | None,
        max_retries: int,
    ) -> Any:
        """The retry loop: one request, retried on network errors, 429 and 5xx, within the deadline; the body."""
        policy = self.retry if max_retries == self.retry.max_retries else replace(self.retry, max_retries=max_retries)
        deadline = self._clock() + self.deadline
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                async with _translate_transport_errors(ep):
                    with anyio.move_on_after(max(deadline - self._clock(), 0.0)) as scope:
                        response = await self.http.request(
                            ep.method, url, content=content, params=query or None, headers=headers
                        )
                if scope.cancelled_caught:
                    raise DripTimeoutError(
                        f"Drip did not answer {ep.name} within the call's deadline ({self.deadline:g} s)"
                    )
            except DripConnectionError as exc:
                exc.idempotency_key = key
                delay = next_delay(policy, attempt, None, deadline - self._clock())
                if delay is None:
                    raise
                logger.debug("%s %s failed (%s); retry %d in %.3fs", ep.method, ep.path, exc.code, attempt + 1, delay)
            else:
                logger.debug(
                    "%s %s -> %d in %.1f ms",
                    ep.method,
                    ep.path,
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                )
                data = parse_body(response)
                if response.status_code < 400:
                    return data
                data = self._masker.mask(data)
                retry_after = parse_retry_after(response.headers.get("Retry-After"), data)
                delay = (
                    next_delay(policy, attempt, retry_after, deadline - self._clock())
                    if is_retryable_status(response.status_code)
                    else None
                )
                if delay is None:
                    raise error_from_response(
                        response.status_code,
                        data,
                        request_id=response.headers.get("X-Request-Id"),
                        retry_after=retry_after,
                        idempotency_key=key,
                    )
                logger.debug(
                    "%s %s -> %d; retry %d in %.3fs",
                    ep.method,
                    ep.path,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
            attempt += 1
            if sleeping_enabled():
                await self._sleep(delay)
            else:
                await self._sleep(0)


def _as_is(data: Any) -> Any:
    return data
