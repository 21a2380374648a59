"""Durable sends: a write is stored before it is sent, and delivered later if Drip is away.

`OutboxSender` is the `DurableSend` a `DripClient` is built with (by
`drip_mcp.runtime`): for a ``durable=True`` write it

1. stores the prepared request in the outbox (`drip_mcp.api.outbox`), leased to this process;
   when it cannot be stored (disk full, read-only, I/O error) nothing is sent and
   `StorageUnavailableError` (retryable, with the idempotency key) is raised;
2. sends it with the client's usual retries;
3. settles the row: ``sent`` on success (and on 409: an earlier attempt whose answer was lost
   already landed it); a retryable failure that outlasted the retries leaves it ``pending`` and
   raises `Queued`; any other failure makes it a dead letter and is raised. When settling fails
   on a storage error, the outcome is still reported: the row stays pending, leased to this
   process, and is replayed (same idempotency key) after the lease, so nothing is lost.

`Drainer` delivers the pending rows of one client's scope until cancelled: what is due now,
then whatever becomes due (backoff) or is found abandoned by a dead process of this host.
It never dies from a storage error: it logs one line and backs off.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.lowlevel

from drip_mcp.api.client import DripClient, PreparedRequest
from drip_mcp.api.outbox import Outbox, OutboxEntry, Queued
from drip_mcp.errors import ConflictError, DripError

__all__ = ["Delivery", "Drainer", "OutboxSender"]

logger = logging.getLogger("drip_mcp.api.durable")


class OutboxSender:
    """Stores each durable write of one scope in `outbox` around its send (see the module docstring)."""

    def __init__(self, outbox: Outbox, scope: str) -> None:
        self.outbox = outbox
        self.scope = scope

    async def __call__(self, request: PreparedRequest, send: Callable[[], Awaitable[Any]]) -> Any:
        outbox, ep = self.outbox, request.endpoint
        entry = outbox.put(
            scope=self.scope,
            endpoint=ep.name,
            method=ep.method,
            path=request.path,
            body=request.body,
            idempotency_key=request.idempotency_key,
        )
        try:
            data = await send()
        except ConflictError:
            # 409 on a write with our key: an earlier attempt (response lost) already landed it.
            self._settle(outbox.mark_sent, entry)
            raise
        except DripError as exc:
            if not exc.retryable:
                self._settle(outbox.bury, entry, exc)
                raise
            self._settle(outbox.defer, entry, exc)
            raise Queued(request.idempotency_key, entry, exc) from exc
        except BaseException:
            self._settle(outbox.release, entry)
            raise
        self._settle(outbox.mark_sent, entry)
        return data

    def _settle(self, settle: Callable[..., object], *args: Any) -> None:
        try:
            settle(*args)
        except sqlite3.Error as exc:
            logger.warning(
                "could not settle outbox row %d in %s (%s); it will be replayed with its idempotency key",
                args[0],
                self.outbox.path,
                exc,
            )


@dataclass(frozen=True)
class Delivery:
    """What one delivery attempt of one row did."""

    entry: OutboxEntry
    outcome: Literal["sent", "deferred", "dead"]
    error: DripError | None = None


class Drainer:
    """Sends the pending rows of one client's scope until cancelled.

    `run` drains what is due, then sleeps until the next row is due (at most
    `idle_s`, so rows queued by other processes, or whose owner died, are
    found too) or until `wake` is called. A storage error (disk full, damaged
    or read-only file) is logged in one line and retried after a backoff that
    doubles up to `MAX_BACKOFF_S`.
    """

    MAX_BACKOFF_S = 300.0

    def __init__(self, client: DripClient, *, batch: int = 20, idle_s: float = 5.0) -> None:
        sender = client.durable
        if not isinstance(sender, OutboxSender):
            raise ValueError("the client has no outbox (build it with durable=OutboxSender(...))")
        self.outbox = sender.outbox
        self.client = client
        self.scope = sender.scope
        self.batch = batch
        self.idle_s = idle_s
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def deliver(self, entry: OutboxEntry) -> Delivery:
        """One attempt at one leased row; settle it."""
        try:
            await self.client.replay(endpoint=entry.endpoint, path=entry.path, body=entry.body.encode())
        except ConflictError:
            # 409 on a replay: the run (or run end) this row carries already landed on an earlier attempt.
            self.outbox.mark_sent(entry.id)
            return Delivery(entry, "sent")
        except DripError as exc:
            if exc.retryable:
                self.outbox.defer(entry.id, exc)
                return Delivery(entry, "deferred", exc)
            self.outbox.bury(entry.id, exc)
            logger.warning("outbox row %d (%s) is a dead letter: %s", entry.id, entry.endpoint, exc.code)
            return Delivery(entry, "dead", exc)
        except BaseException:
            self.outbox.release(entry.id)
            raise
        self.outbox.mark_sent(entry.id)
        return Delivery(entry, "sent")

    async def drain_once(self, *, force: bool = False) -> list[Delivery]:
        """Claim one batch of due rows and attempt each once, in order."""
        entries = self.outbox.claim(self.scope, limit=self.batch, force=force)
        done: list[Delivery] = []
        try:
            for entry in entries:
                done.append(await self.deliver(entry))
        finally:
            for entry in entries[len(done) :]:
                self.outbox.release(entry.id)
        return done

    async def flush(self) -> list[Delivery]:
        """Attempt every pending row of the scope once, due or not (the operator's ``flush``)."""
        self.outbox.recover_abandoned()
        seen: set[int] = set()
        results: list[Delivery] = []
        while True:
            entries = self.outbox.claim(self.scope, limit=self.batch, force=True)
            fresh = [e for e in entries if e.id not in seen]
            for entry in entries:
                if entry.id in seen:
                    self.outbox.release(entry.id)
            if not fresh:
                return results
            for entry in fresh:
                seen.add(entry.id)
                results.append(await self.deliver(entry))

    async def run(self) -> None:
        """Drain until cancelled; never raises (problems are logged and retried)."""
        pruned = False
        last_sweep = float("-inf")
        failures = 0
        while True:
            try:
                if time.monotonic() - last_sweep > self.idle_s:
                    self.outbox.recover_abandoned()
                    last_sweep = time.monotonic()
                if not pruned:
                    self.outbox.prune()
                    pruned = True
                while await self.drain_once():
                    pass
                due = self.outbox.next_due(self.scope)
                failures = 0
                wait = self.idle_s if due is None else min(self.idle_s, max(0.0, due - time.time()))
            except sqlite3.Error as exc:
                failures += 1
                wait = min(self.idle_s * 2 ** min(failures - 1, 16), max(self.idle_s, self.MAX_BACKOFF_S))
                logger.warning(
                    "outbox drainer: storage error on %s (%s); retrying in %g s", self.outbox.path, exc, wait
                )
            except Exception:
                logger.exception("outbox drainer failed; retrying")
                wait = self.idle_s
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._wake.wait()
                self._wake = anyio.Event()
            else:
                await anyio.lowlevel.checkpoint()
