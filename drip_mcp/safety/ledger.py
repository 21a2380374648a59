"""The session ledger: what this server process tracked and charged.

`SessionLedger` is per process (each uvicorn worker has its own). Entries are
appended when a usage or charge tool finishes, successfully or not (each tool
says what to record with its ``ledger`` hook); totals are computed from the
entries, never kept separately.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from drip_mcp.api.models import format_money

__all__ = ["LedgerEntry", "Outcome", "SessionLedger"]

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
        data = asdict(self)
        data["quantity"] = str(self.quantity)
        data["amount_usdc"] = None if self.amount_usdc is None else format_money(self.amount_usdc)
        return data


class SessionLedger:
    """Append-only, in-memory record of this process's writes, with per-customer totals."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: list[LedgerEntry] = []
        self._max = max_entries
        self._lock = threading.Lock()

    def add(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._max:
                del self._entries[: len(self._entries) - self._max]

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def summary(self) -> dict[str, Any]:
        """Entries plus totals per customer (charged amounts count only confirmed charges)."""
        entries = self.entries()
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
