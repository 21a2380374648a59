"""Argument completions for resource templates and prompts, from the caller's own Drip data.

=================  ===========================================  ========================
argument           values                                       source (client call)
=================  ===========================================  ========================
``meter``          active meters whose name starts with it      ``list_pricing_plans``
``customer_id``    customer ids whose id or external id does    ``list_customers``
``workflow``       workflow slugs starting with it              ``list_workflows``
=================  ===========================================  ========================

The SDK's handler gets ``(ref, argument, context)`` and no request context, so the client comes from
the server's resolver (per request over HTTP). Each list is cached for `CACHE_TTL_S` per key
fingerprint and argument, with an injectable clock. A Drip error, or a key that may not list the
source, completes to nothing: completions are a convenience and never fail the client's input box.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from mcp.server.mcpserver import MCPServer
from mcp_types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from drip_mcp.api.client import DripClient
from drip_mcp.errors import DripError

__all__ = ["CACHE_TTL_S", "MAX_VALUES", "Choice", "Completer", "register"]

logger = logging.getLogger("drip_mcp.features.completions")

CACHE_TTL_S: Final = 30.0
MAX_VALUES: Final = 100
"""The spec's cap on values in one completion result."""

ClientResolver = Callable[[], DripClient]
Choice = tuple[str, tuple[str, ...]]
"""A value to offer and the strings a prefix may match (the value itself, an external id, ...)."""


async def _meters(client: DripClient) -> list[Choice]:
    plans = (await client.list_pricing_plans()).data
    return [(p.unit_type, (p.unit_type,)) for p in plans if p.is_active]


async def _customers(client: DripClient) -> list[Choice]:
    customers = (await client.list_customers(limit=100)).data
    return [(c.id, (c.id, c.external_customer_id or c.id)) for c in customers]


async def _workflows(client: DripClient) -> list[Choice]:
    workflows = (await client.list_workflows(limit=100)).data
    return [(w.slug, (w.slug, w.name)) for w in workflows if w.is_active]


SOURCES: Final[dict[str, tuple[str, Callable[[DripClient], Awaitable[list[Choice]]]]]] = {
    "meter": ("list_pricing_plans", _meters),
    "customer_id": ("list_customers", _customers),
    "workflow": ("list_workflows", _workflows),
}
"""Completable argument -> (the endpoint it lists, how to turn that list into choices)."""


class Completer:
    """Completes `SOURCES` arguments for any template or prompt that has them, caching each list briefly."""

    def __init__(
        self, resolve_client: ClientResolver, *, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolve_client = resolve_client
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, list[Choice]]] = {}

    async def choices(self, argument: str) -> list[Choice]:
        """The cached (or freshly listed) choices for `argument`; empty when it is not completable."""
        source = SOURCES.get(argument)
        if source is None:
            return []
        endpoint, fetch = source
        client = self._resolve_client()
        if not client.allows(endpoint):
            return []
        key = (client.api_key.fingerprint, argument)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            found = await fetch(client)
        except DripError as exc:
            logger.info("completion source for %s failed: %s", argument, exc.code)
            return []
        self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl_s}
        self._cache[key] = (now, found)
        return found

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        """The `completion/complete` handler: values matching the typed prefix (case-insensitive)."""
        prefix = argument.value.casefold()
        values = sorted(
            {
                value
                for value, keys in await self.choices(argument.name)
                if any(k.casefold().startswith(prefix) for k in keys)
            }
        )
        return Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)


def register(
    server: MCPServer[Any],
    resolve_client: ClientResolver,
    *,
    ttl_s: float = CACHE_TTL_S,
    clock: Callable[[], float] = time.monotonic,
) -> Completer:
    """Serve `completion/complete` on `server` from a new `Completer`, which it returns."""
    completer = Completer(resolve_client, ttl_s=ttl_s, clock=clock)
    server.completion()(completer.complete)  # type: ignore[no-untyped-call]  # the SDK's decorator is untyped
    return completer
