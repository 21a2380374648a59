"""The session ledger: what a tenant tracked and charged.

`SessionLedger` keeps entries in the state store (`drip_mcp.state`) under a
ledger scope: the tenant (shared by every process with ``--state-url``, by the
processes of one state directory otherwise), or the tenant and this process over
stdio, whose entries stay in this process's memory (`ProcessLedger`). Entries
are appended when a usage or charge tool finishes, successfully or not (each
tool says what to record with its ``ledger`` hook); totals are computed from
the entries, never kept separately.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from drip_mcp.api.models import format_money
from drip_mcp.state.base import LedgerStore

__all__ = ["LedgerEntry", "Outcome", "ProcessLedger", "SessionLedger"]

Outcome = Literal["recorded", "queued", "charged", "duplicate", "failed", "unknown"]


@dataclass(frozen=True)
class LedgerEntry:
    """One usage or charge write made through this process."""

    kind: Literal["usage", "charge"]
    customer_id: str
    meter: str
    quantity: Decimal
    amount_usdc: Decimal | None
    idempotency_key: str | None
    outcome: Outcome
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "customer_id": self.customer_id,
            "meter": self.meter,
            "quantity": str(self.quantity),
            "amount_usdc": None if self.amount_usdc is None else format_money(self.amount_usdc),
            "idempotency_key": self.idempotency_key,
            "outcome": self.outcome,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerEntry:
        amount = data.get("amount_usdc")
        return cls(
            kind=data["kind"],
            customer_id=data["customer_id"],
            meter=data["meter"],
            quantity=Decimal(data["quantity"]),
            amount_usdc=None if amount is None else Decimal(amount),
            idempotency_key=data.get("idempotency_key"),
            outcome=data["outcome"],
            at=data["at"],
        )


class ProcessLedger:
    """A `LedgerStore` in this process's memory, for scopes no other process reads (stdio's, tests')."""

    def __init__(self) -> None:
        self._entries: dict[str, deque[dict[str, Any]]] = {}

    async def add_ledger_entry(self, scope: str, entry: Mapping[str, Any], *, keep: int) -> None:
        self._entries.setdefault(scope, deque(maxlen=keep)).append(dict(entry))

    async def ledger_entries(self, scope: str, *, last: int) -> list[dict[str, Any]]:
        return list(self._entries.get(scope, ()))[-last:]


class SessionLedger:
    """Append-only record of each scope's writes, in `store` (this process's memory by default), with
    per-customer totals."""

    def __init__(self, max_entries: int = 10_000, *, store: LedgerStore | None = None) -> None:
        self._max = max_entries
        self.store: LedgerStore = store if store is not None else ProcessLedger()

    async def add(self, entry: LedgerEntry, *, scope: str) -> None:
        await self.store.add_ledger_entry(scope, entry.to_json(), keep=self._max)

    async def entries(self, scope: str) -> list[LedgerEntry]:
        return [LedgerEntry.from_json(data) for data in await self.store.ledger_entries(scope, last=self._max)]

    async def summary(self, scope: str) -> dict[str, Any]:
        """Entries plus totals per customer (charged amounts count only confirmed charges)."""
        entries = await self.entries(scope)
        totals: dict[str, dict[str, Any]] = {}
        for e in entries:
            t = totals.setdefault(
                e.customer_id, {"usage_events": 0, "charges": 0, "charged_usdc": Decimal(0), "failed": 0}
            )
            if e.outcome == "failed":
                t["failed"] += 1
            elif e.kind == "usage":
                t["usage_events"] += 1
            elif e.outcome == "charged":
                t["charges"] += 1
                t["charged_usdc"] += e.amount_usdc or Decimal(0)
        charged = sum((t["charged_usdc"] for t in totals.values()), Decimal(0))
        for t in totals.values():
            t["charged_usdc"] = format_money(t["charged_usdc"])
        return {
            "entries": [e.to_json() for e in entries],
            "totals_by_customer": totals,
            "total_charged_usdc": format_money(charged),
        }
