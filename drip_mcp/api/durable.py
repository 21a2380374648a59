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

Both speak to an `OutboxStore` (`drip_mcp.state.base`): the shared PostgreSQL outbox
(`drip_mcp.state.postgres.PostgresOutbox`), or the SQLite file (`Outbox`) through `LocalOutbox`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.lowlevel

from drip_mcp.api.client import DripClient, PreparedRequest
from drip_mcp.api.outbox import Outbox, OutboxCounts, Queued
from drip_mcp.errors import ConflictError, DripError
from drip_mcp.state.base import KeyedStatus, OutboxRecord, OutboxStore
from drip_mcp.state.base import OutboxCounts as SharedCounts
from drip_mcp.state.tenancy import tenant_for_fingerprint

__all__ = ["Delivery", "Drainer", "LocalOutbox", "OutboxSender"]

logger = logging.getLogger("drip_mcp.api.durable")


class LocalOutbox:
    """The SQLite `Outbox` file as an `OutboxStore` (its rows are scoped by key; it keeps no tenant column)."""

    def __init__(self, outbox: Outbox) -> None:
        self.file = outbox
        self.where = str(outbox.path)

    async def put(
        self, *, scope: str, tenant: str, endpoint: str, method: str, path: str, body: bytes, idempotency_key: str
    ) -> int:
        return self.file.put(
            scope=scope, endpoint=endpoint, method=method, path=path, body=body, idempotency_key=idempotency_key
        )

    async def mark_sent(self, entry_id: int, *, status: int | None = None) -> None:
        self.file.mark_sent(entry_id, status=status)

    async def defer(self, entry_id: int, error: DripError) -> float:
        return self.file.defer(entry_id, error)

    async def bury(self, entry_id: int, error: DripError) -> None:
        self.file.bury(entry_id, error)

    async def release(self, entry_id: int) -> None:
        self.file.release(entry_id)

    async def claim(self, scope: str, *, limit: int = 20, force: bool = False) -> Sequence[OutboxRecord]:
        return self.file.claim(scope, limit=limit, force=force)

    async def recover_abandoned(self) -> int:
        return self.file.recover_abandoned()

    async def next_due(self, scope: str) -> float | None:
        return self.file.next_due(scope)

    async def counts(self, scope: str | None = None, *, tenant: str | None = None) -> SharedCounts:
        found: OutboxCounts = self.file.counts(scope)
        return SharedCounts(pending=found.pending, dead=found.dead, sent=found.sent)

    async def with_key_prefix(self, scope: str, prefix: str, *, tenant: str | None = None) -> list[KeyedStatus]:
        return [KeyedStatus(key, status, code) for key, status, code in self.file.with_key_prefix(scope, prefix)]

    async def prune(self) -> int:
        return self.file.prune()

    async def waiting_scopes(self) -> list[str]:
        return sorted({e.scope for e in self.file.entries(status="pending", limit=1_000_000)})


def as_outbox_store(outbox: Outbox | OutboxStore) -> OutboxStore:
    """`outbox` as an `OutboxStore` (a SQLite `Outbox` file is wrapped in `LocalOutbox`)."""
    return LocalOutbox(outbox) if isinstance(outbox, Outbox) else outbox


class OutboxSender:
    """Stores each durable write of one scope in `outbox` around its send (see the module docstring).

    `outbox` is the SQLite `Outbox` file or a shared `OutboxStore`. Rows carry the tenant
    (`drip_mcp.state.tenancy`) so counts and listings are per tenant.
    """

    def __init__(self, outbox: Outbox | OutboxStore, scope: str) -> None:
        self.outbox = outbox
        self.store = as_outbox_store(outbox)
        self.scope = scope

    def tenant(self) -> str:
        """The tenant of the write being made: the OAuth subject, else the fingerprint in the scope."""
        return tenant_for_fingerprint(self.scope.rpartition("|")[2])

    async def counts(self, *, tenant: str | None = None) -> SharedCounts:
        """This scope's rows (only `tenant`'s, where the store records tenants)."""
        return await self.store.counts(self.scope, tenant=tenant)

    async def with_key_prefix(self, prefix: str, *, tenant: str | None = None) -> list[KeyedStatus]:
        """This scope's rows whose idempotency key starts with `prefix` (a batch's), oldest first."""
        return await self.store.with_key_prefix(self.scope, prefix, tenant=tenant)

    async def __call__(self, request: PreparedRequest, send: Callable[[], Awaitable[Any]]) -> Any:
        outbox, ep = self.store, request.endpoint
        entry = await outbox.put(
            scope=self.scope,
            tenant=self.tenant(),
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
            await self._settle(outbox.mark_sent, entry)
            raise
        except DripError as exc:
            if not exc.retryable:
                await self._settle(outbox.bury, entry, exc)
                raise
            await self._settle(outbox.defer, entry, exc)
            raise Queued(request.idempotency_key, entry, exc) from exc
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._settle(outbox.release, entry)
            raise
        await self._settle(outbox.mark_sent, entry)
        return data

    async def _settle(self, settle: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Record a send's outcome; a storage error only logs: the row stays pending and is replayed
        with its idempotency key, so nothing is lost and nothing is counted twice."""
        try:
            await settle(*args)
        except (sqlite3.Error, OSError) as exc:
            logger.warning(
                "could not settle outbox row %d (%s); it will be replayed with its idempotency key", args[0], exc
            )


@dataclass(frozen=True)
class Delivery:
    """What one delivery attempt of one row did."""

    entry: OutboxRecord
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
        self.outbox = sender.store
        self.client = client
        self.scope = sender.scope
        self.batch = batch
        self.idle_s = idle_s
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def deliver(self, entry: OutboxRecord) -> Delivery:
        """One attempt at one leased row; settle it."""
        try:
            await self.client.replay(endpoint=entry.endpoint, path=entry.path, body=entry.body.encode())
        except ConflictError:
            # 409 on a replay: the run (or run end) this row carries already landed on an earlier attempt.
            await self.outbox.mark_sent(entry.id)
            return Delivery(entry, "sent")
        except DripError as exc:
            if exc.retryable:
                await self.outbox.defer(entry.id, exc)
                return Delivery(entry, "deferred", exc)
            await self.outbox.bury(entry.id, exc)
            logger.warning("outbox row %d (%s) is a dead letter: %s", entry.id, entry.endpoint, exc.code)
            return Delivery(entry, "dead", exc)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.outbox.release(entry.id)
            raise
        await self.outbox.mark_sent(entry.id)
        return Delivery(entry, "sent")

    async def drain_once(self, *, force: bool = False) -> list[Delivery]:
        """Claim one batch of due rows and attempt each once, in order."""
        entries = await self.outbox.claim(self.scope, limit=self.batch, force=force)
        done: list[Delivery] = []
        try:
            for entry in entries:
                done.append(await self.deliver(entry))
        finally:
            with anyio.CancelScope(shield=True):
                for entry in entries[len(done) :]:
                    await self.outbox.release(entry.id)
        return done

    async def flush(self) -> list[Delivery]:
        """Attempt every pending row of the scope once, due or not (the operator's ``flush``)."""
        await self.outbox.recover_abandoned()
        seen: set[int] = set()
        results: list[Delivery] = []
        while True:
            entries = await self.outbox.claim(self.scope, limit=self.batch, force=True)
            fresh = [e for e in entries if e.id not in seen]
            for entry in entries:
                if entry.id in seen:
                    await self.outbox.release(entry.id)
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
                    await self.outbox.recover_abandoned()
                    last_sweep = time.monotonic()
                if not pruned:
                    await self.outbox.prune()
                    pruned = True
                while await self.drain_once():
                    pass
                due = await self.outbox.next_due(self.scope)
                failures = 0
                wait = self.idle_s if due is None else min(self.idle_s, max(0.0, due - time.time()))
            except (sqlite3.Error, OSError) as exc:  # a full disk, a damaged or read-only file: one line, back off
                failures += 1
                wait = min(self.idle_s * 2 ** min(failures - 1, 16), max(self.idle_s, self.MAX_BACKOFF_S))
                logger.warning(
                    "outbox drainer: storage error on %s (%s); retrying in %g s", self.outbox.where, exc, wait
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
