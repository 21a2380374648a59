"""`SpendGuard`: the operator's per-charge cap and a budget per budget scope, with reservations.

A charge *reserves* its amount before it is sent, so N concurrent charges can
never overspend together; the reservation is committed when Drip confirms the
charge and released when Drip refuses it. When the outcome is unknown (network
error, 5xx) the reservation is kept: the money may have moved, so the budget
assumes it did.

Reservations live in the state store (`drip_mcp.state`), keyed by a budget
scope: the tenant over HTTP (so with ``--state-url`` a tenant's budget is shared
by every process of the fleet), the tenant and this process over stdio
(`drip_mcp.tools.context.Services.scope_of`). The store reserves atomically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import anyio

from drip_mcp.api.models import format_money
from drip_mcp.errors import SpendCapExceededError
from drip_mcp.state.base import BudgetExceeded, BudgetStore
from drip_mcp.state.sqlite import SqliteState

__all__ = ["SpendGuard"]


class SpendGuard:
    """Per-call cap and per-scope budget, with reservations in `store` (in memory by default). Amounts in USDC."""

    def __init__(
        self, max_charge: Decimal | None = None, budget: Decimal | None = None, *, store: BudgetStore | None = None
    ) -> None:
        self.max_charge = max_charge
        self.budget = budget
        self.store: BudgetStore = store if store is not None else SqliteState()

    @property
    def active(self) -> bool:
        return self.max_charge is not None or self.budget is not None

    async def spent(self, scope: str) -> Decimal:
        return (await self.store.budget_totals(scope))[0]

    async def remaining(self, scope: str) -> Decimal | None:
        if self.budget is None:
            return None
        spent, reserved = await self.store.budget_totals(scope)
        return max(Decimal(0), self.budget - spent - reserved)

    def describe(self, spent: Decimal = Decimal(0)) -> list[str]:
        caps = []
        if self.max_charge is not None:
            caps.append(f"max {format_money(self.max_charge)} USDC per charge")
        if self.budget is not None:
            caps.append(f"session budget {format_money(self.budget)} USDC ({format_money(spent)} spent)")
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

    @asynccontextmanager
    async def reserve(self, amount: Decimal, *, scope: str) -> AsyncIterator[_Reservation]:
        """Hold `amount` against `scope`'s budget for the duration of a charge."""
        try:
            await self.store.reserve(scope, amount, self.budget)
        except BudgetExceeded as exc:
            assert self.budget is not None
            raise SpendCapExceededError(
                f"This charge ({format_money(amount)} USDC) would exceed the session budget of "
                f"{format_money(self.budget)} USDC ({format_money(exc.left)} USDC left); "
                "nothing was charged.",
                cap="session_budget",
                limit=self.budget,
                requested=amount,
                remaining=exc.left,
            ) from None
        reservation = _Reservation(amount)
        try:
            yield reservation
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled charge still settles its reservation
                await self.store.settle(scope, amount, reservation.settled)


@dataclass
class _Reservation:
    amount: Decimal
    settled: Decimal | None = None

    def commit(self, actual: Decimal | None = None) -> None:
        """The charge happened (or may have): count it against the budget."""
        self.settled = self.amount if actual is None else actual
