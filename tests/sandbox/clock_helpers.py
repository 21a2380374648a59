"""A settable clock for the sandbox store (imported by name: tests/ has no __init__)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]
