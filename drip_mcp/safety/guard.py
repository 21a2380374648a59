"""`SpendGuard`: the operator's per-charge cap and per-process budget, with reservations.

A charge *reserves* its amount before it is sent, so N concurrent charges can
never overspend together; the reservation is committed when Drip confirms the
charge and released when Drip refuses it. When the outcome is unknown (network
error, 5xx) the reservation is kept: the money may have moved, so the budget
assumes it did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from drip_mcp.api.models import format_money
from drip_mcp.errors import SpendCapExceededError

__all__ = ["SpendGuard"]


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
