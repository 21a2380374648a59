"""Background settlement of async (``POST /usage/async``) charges.

`SettlementWorker.run` calls `Store.settle_pending` whenever the store reports
a new PENDING charge (`Store.settle_listener`), and every `poll_s` seconds for
charges another process wrote into a shared database file. It runs beside the
webhook delivery worker (inside ``async with sandbox:`` or the app lifespan);
without it, charges stay PENDING. `settled` is set after each pass that
settled something, so in-process callers can wait on it.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from drip_mcp.sandbox.store import Store

__all__ = ["SettlementWorker"]


class SettlementWorker:
    """Settles PENDING charges; `notify` wakes it."""

    def __init__(self, store: Store, *, poll_s: float = 1.0) -> None:
        self._store = store
        self._poll_s = poll_s
        self._wake: anyio.Event | None = None
        self.settled = anyio.Event()
        store.settle_listener = self.notify

    def notify(self) -> None:
        """Wake the worker (called by the store after a commit that queued a charge)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Settle until cancelled."""
        while True:
            self._wake = anyio.Event()
            if self._store.settle_pending():
                self.settled.set()
                self.settled = anyio.Event()
                await anyio.lowlevel.checkpoint()  # yield to other tasks between passes
                continue
            with anyio.move_on_after(self._poll_s):
                await self._wake.wait()
