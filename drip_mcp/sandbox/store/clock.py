"""An injectable clock for the domains whose behaviour depends on time (`ClockMixin`).

Entitlement periods and subscription periods read ``store.clock()`` (epoch
seconds, default `time.time`) instead of the system clock, so tests replace it
(``sandbox.store.clock = fake``) and move time forward without sleeping.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from drip_mcp.sandbox.store.base import StoreBase, iso_at

__all__ = ["ClockMixin", "add_interval", "parse_iso"]


class ClockMixin(StoreBase):
    """``clock`` (epoch seconds) and helpers over it."""

    clock: Callable[[], float] = staticmethod(time.time)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def _now_iso(self) -> str:
        return iso_at(self.clock())


def parse_iso(value: str) -> datetime | None:
    """An ISO-8601 timestamp (``Z`` allowed; naive means UTC), or None when malformed."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months, clamping the day to the target month's length."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_interval(moment: datetime, interval: str) -> datetime:
    """`moment` plus one DAILY, WEEKLY, MONTHLY or ANNUAL interval."""
    if interval == "DAILY":
        return moment + timedelta(days=1)
    if interval == "WEEKLY":
        return moment + timedelta(days=7)
    if interval == "MONTHLY":
        return add_months(moment, 1)
    return add_months(moment, 12)
