"""The sandbox ledger: every resource in one SQLite database, one mixin per domain.

`Store` composes the domain mixins over `StoreBase` (connection, ``_write``
transactions, ids, money, the webhook outbox); see `drip_mcp.sandbox.store.base`.

How to add a domain:

1. Add ``store/<domain>.py`` with ``class <Domain>Mixin(StoreBase)`` (or a subclass of the mixin whose
   helpers it uses, e.g. ``CustomersMixin``), setting ``SCHEMA`` (``CREATE ... IF NOT EXISTS`` SQL) and its methods.
2. Add the mixin to `Store`'s bases below, before any mixin it builds on (and re-export its public names).
3. Add the route module ``drip_mcp/sandbox/<domain>.py`` with ``routes`` and list them in ``app.py``'s ``/v1`` mount.
"""

from __future__ import annotations

from drip_mcp.sandbox.store.base import (
    MICROS_PER_USDC,
    SANDBOX_BUSINESS_ID,
    Record,
    StoreBase,
    from_micros,
    iso_at,
    iso_now,
    new_id,
    to_micros,
)
from drip_mcp.sandbox.store.billing import (
    SEEDED_PLANS,
    BillingMixin,
    ChargeOutcome,
    InsufficientBalance,
    UsageOutcome,
)
from drip_mcp.sandbox.store.caps import CapsMixin
from drip_mcp.sandbox.store.checkout import CheckoutMixin
from drip_mcp.sandbox.store.contracts import ContractsMixin
from drip_mcp.sandbox.store.customers import CustomersMixin
from drip_mcp.sandbox.store.entitlements import EntitlementsMixin
from drip_mcp.sandbox.store.events import EventsMixin
from drip_mcp.sandbox.store.payouts import PayoutsMixin
from drip_mcp.sandbox.store.plans import PlansMixin
from drip_mcp.sandbox.store.runs import RunsMixin
from drip_mcp.sandbox.store.subscriptions import SubscriptionsMixin
from drip_mcp.sandbox.store.webhooks import WebhooksMixin

__all__ = [
    "MICROS_PER_USDC",
    "SANDBOX_BUSINESS_ID",
    "SEEDED_PLANS",
    "ChargeOutcome",
    "InsufficientBalance",
    "Record",
    "Store",
    "StoreBase",
    "UsageOutcome",
    "from_micros",
    "iso_at",
    "iso_now",
    "new_id",
    "to_micros",
]


class Store(
    PayoutsMixin,  # sandbox-a: withdrawals, portal sessions (builds on SettlementMixin: async charges, refunds)
    CapsMixin,  # sandbox-a: spending caps (charge hooks)
    ContractsMixin,  # sandbox-a: contracts and price overrides (charge hooks)
    PlansMixin,  # sandbox-a: pricing-plan get/update/versions
    EntitlementsMixin,
    SubscriptionsMixin,
    EventsMixin,
    BillingMixin,
    RunsMixin,
    CheckoutMixin,
    WebhooksMixin,
    CustomersMixin,
    StoreBase,
):
    """Every sandbox resource, persisted in SQLite (see `StoreBase` for transactions and the outbox)."""
