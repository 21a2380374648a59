"""The sandbox ledger (moved to `drip_mcp.sandbox.store.base`; split by domain next)."""

from __future__ import annotations

from drip_mcp.sandbox.store.base import (
    MICROS_PER_USDC,
    SANDBOX_BUSINESS_ID,
    SEEDED_PLANS,
    ChargeOutcome,
    InsufficientBalance,
    Record,
    Store,
    UsageOutcome,
    from_micros,
    iso_at,
    iso_now,
    new_id,
    to_micros,
)

__all__ = [
    "MICROS_PER_USDC",
    "SANDBOX_BUSINESS_ID",
    "SEEDED_PLANS",
    "ChargeOutcome",
    "InsufficientBalance",
    "Record",
    "Store",
    "UsageOutcome",
    "from_micros",
    "iso_at",
    "iso_now",
    "new_id",
    "to_micros",
]
