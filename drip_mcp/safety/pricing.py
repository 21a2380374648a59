"""Meter prices, cached briefly, for previews and spend caps.

A meter's price is its active pricing plan's ``unitPriceUsd`` (FLAT model:
amount = quantity x unit price). Prices are fetched with ``GET /pricing-plans``
and kept for `PRICE_TTL_S` seconds per account, so a burst of charges costs one
lookup. Unknown meters and non-FLAT plans price as ``None``: callers that need
a price (spend caps) must then refuse, not guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import anyio

from drip_mcp.api.client import DripClient

__all__ = ["PRICE_TTL_S", "PriceBook"]

PRICE_TTL_S = 60.0


class PriceBook:
    """Per-account cache of FLAT unit prices by meter."""

    def __init__(self, ttl_s: float = PRICE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Decimal | None]]] = {}
        self._lock = anyio.Lock()

    async def unit_price(self, client: DripClient, meter: str) -> Decimal | None:
        """The meter's unit price in USD, or None if no active FLAT plan prices it."""
        account = f"{client.base_url}|{client.api_key.fingerprint}"  # masked keys can coincide; fingerprints do not
        async with self._lock:
            cached = self._cache.get(account)
            if cached is None or self._clock() - cached[0] > self._ttl:
                page = await client.list_pricing_plans()
                prices: dict[str, Decimal | None] = {}
                for plan in page.data:
                    if not plan.is_active:
                        continue
                    flat = (plan.pricing_model or "FLAT").upper() == "FLAT"
                    prices[plan.unit_type] = plan.unit_price_usd if flat else None
                cached = (self._clock(), prices)
                self._cache[account] = cached
        return cached[1].get(meter)
