"""The session ledger: what this server process tracked and charged, and the spend budget.

`SessionLedger` is per process (each uvicorn worker has its own). Entries are
appended when a usage or charge tool finishes, successfully or not; totals are
computed from the entries, never kept separately.

`SpendGuard` enforces the operator's per-process budget. A charge *reserves*
its amount before it is sent, so N concurrent charges can never overspend
together; the reservation is committed when Drip confirms the charge and
released when Drip refuses it. When the outcome is unknown (network error,
5xx) the reservation is kept: the money may have moved, so the budget assumes
it did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from drip_mcp.errors import SpendCapExceededError
from drip_mcp.models import format_money

__all__ = ["LedgerEntry", "SessionLedger", "SpendGuard"]

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


class SpendGuard:
    """Per-call cap and per-process budget, with reservations. Amounts in USDC."""

    def __init__(self, max_charge: Decimal | None = None, budget: Decimal | None = None) -> None:
        self.max_charge = max_charge
        self.budget = budget
        self._spent = Decimal(0)
        self._reserved = Decimal(0)
        self._lock = threading.Lock()
        self._started = time.monotonic()

    @property
    def active(self) -> bool:
        return self.max_charge is not None or self.budget is not None

    @property
    def spent(self) -> Decimal:
        return self._spent

    def remaining(self) -> Decimal | None:
        if self.budget is None:
            return None
        with self._lock:
            return max(Decimal(0), self.budget - self._spent - self._reserved)

    def describe(self) -> list[str]:
        caps = []
        if self.max_charge is not None:
            caps.append(f"max {format_money(self.max_charge)} USDC per charge")
        if self.budget is not None:
            caps.append(f"session budget {format_money(self.budget)} USDC ({format_money(self._spent)} spent)")
        return caps

    def check_per_call(self, amount: Decimal) -> None:
        if self.max_charge is not None and amount > self.max_charge:
            raise SpendCapExceededError(
                f"This charge ({format_money(amount)} USDC) exceeds the per-charge cap of "
                f"{format_money(self.max_charge)} USDC set by the operator; nothing was charged.",
                cap="per_charge",
                limit=self.max_charge,
                requested=amount,
                remaining=self.max_charge,
            )

    @contextmanager
    def reserve(self, amount: Decimal) -> Iterator[_Reservation]:
        """Hold `amount` against the budget for the duration of a charge."""
        with self._lock:
            if self.budget is not None:
                left = self.budget - self._spent - self._reserved
                if amount > left:
                    raise SpendCapExceededError(
                        f"This charge ({format_money(amount)} USDC) would exceed the session budget of "
                        f"{format_money(self.budget)} USDC ({format_money(max(left, Decimal(0)))} USDC left); "
                        "nothing was charged.",
                        cap="session_budget",
                        limit=self.budget,
                        requested=amount,
                        remaining=max(left, Decimal(0)),
                    )
            self._reserved += amount
        reservation = _Reservation(amount)
        try:
            yield reservation
        finally:
            with self._lock:
                self._reserved -= amount
                if reservation.settled is not None:
                    self._spent += reservation.settled

    def record_spend(self, amount: Decimal) -> None:
        """Count a charge made without a reservation (no budget configured)."""
        with self._lock:
            self._spent += amount


@dataclass
class _Reservation:
    amount: Decimal
    settled: Decimal | None = None

    def commit(self, actual: Decimal | None = None) -> None:
        """The charge happened (or may have): count it against the budget."""
        self.settled = self.amount if actual is None else actual
