"""The durable outbox's storage: append-only writes that survive Drip outages and process crashes.

The usage and run writes are sent with ``DripClient.request(..., durable=True)``;
the client hands them to its `drip_mcp.api.durable.OutboxSender`, which uses
this table to:

1. **persist** the request (endpoint, formatted path, JSON body with its
   ``idempotencyKey``) in SQLite *before* sending it, leased to this process;
2. on success mark the row ``sent``; on a retryable failure that outlasted the
   client's retries leave it ``pending`` with a backoff (`Queued` is raised: not
   an error, the tool reports ``status: "queued"``); on any other failure mark
   it ``dead`` with the error code and status (a dead letter for inspection).

**One commit per write.** The ``sent`` mark is not a transaction of its own: it is
written with the instance's next transaction (the next write's row, or the
drainer's claim, at least every `Drainer.idle_s`, 5 s), and before anything is
read or the file is closed. Until then the row is pending and leased to this
instance: another process of the file counts it as pending for those few
seconds (its lease keeps any other drainer off it), and if this process dies
first the row is replayed after its lease, with its idempotency key, which Drip
answers as the duplicate it is. A second commit per usage write cost about
0.1 ms of CPU (`bench/RESULTS.md`).

A `drip_mcp.api.durable.Drainer` keeps claiming due ``pending`` rows and sending
each once per claim; what is pending when a process stops is drained at the next
start. ``drip_charge`` never comes here: money is not queued.

**Several processes may share one file.** Rows are claimed with a lease
(``lease_owner``, ``lease_until``) inside ``BEGIN IMMEDIATE``, so two drainers
never hold the same row. A lease ends when the holder settles the row, when it
expires, or, at once, when its owner is a process of this host that no longer
exists (SQLite WAL files are shared by processes of one host only). Replays
are harmless anyway (the idempotency key), but leases avoid them.

**Scopes.** Each row carries a scope: the API it targets and a one-way
fingerprint of the key that queued it. A drainer only sends its own scope's
rows, so a sandbox event is never sent to live Drip, nor account A's event
with account B's key. Rows never contain the API key: the body never has it
and headers are not stored.

Row life: ``pending`` -> ``sent`` | ``dead``; ``retry-dead`` moves ``dead``
back to ``pending``. ``sent`` rows are pruned after `SENT_RETENTION_S`.
Operators inspect it with ``drip-mcp outbox …`` (`drip_mcp.outbox_cli`).

**Integrity.** Opening an existing file runs ``PRAGMA quick_check`` once (never
per write): a damaged file raises `OutboxCorruptError` naming it, and nothing
is recreated or changed. A file emptied to zero bytes cannot be told from a new
one by SQLite, so the first recorded row leaves a sidecar marker,
``<file>.recorded`` (0600, written once per file; also written when an older file
with rows is opened): a zero-length outbox with its marker present is damaged
too. A *missing* outbox with a stale marker (the file was deleted on purpose)
is started afresh with a warning in the log. `drip_mcp.api.salvage` copies the
readable rows of a damaged file to a fresh one (``drip-mcp outbox salvage``).

**Storage failures.** A write that cannot be stored (disk full, read-only file
system, I/O error) raises `StorageUnavailableError` from `Outbox.put`, the one
place where the request path meets SQLite: retryable, with the idempotency key,
and nothing sent. The file and its ``-wal``/``-shm`` are 0600
(`drip_mcp.paths.private_database`).

One cohesive thing (the table and the life of its rows), hence its length;
recovery from damage lives beside it in `drip_mcp.api.salvage`.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drip_mcp.api.retrying import RetryPolicy, backoff_delay
from drip_mcp.errors import DripError, OutboxCorruptError, RateLimitError, StorageUnavailableError
from drip_mcp.keys import ApiKey
from drip_mcp.paths import PRIVATE_FILE_MODE, ensure_private_dir, private_database
from drip_mcp.state.base import Status

__all__ = [
    "Outbox",
    "OutboxCounts",
    "OutboxEntry",
    "Queued",
    "open_outbox",
    "outbox_scope",
    "recorded_marker",
]

logger = logging.getLogger("drip_mcp.outbox")


#: How long a lease protects a row from other drainers (a live holder settles it much sooner).
DEFAULT_LEASE_S = 600.0
#: Backoff between delivery attempts of one row: base * 2**n, capped, with jitter.
DEFAULT_BACKOFF = RetryPolicy(base_delay=1.0, max_delay=60.0, max_retry_after=300.0)
SENT_RETENTION_S = 7 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error_code TEXT,
    last_status INTEGER,
    last_error TEXT,
    sent_at REAL,
    UNIQUE (scope, endpoint, idempotency_key)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, scope, next_attempt_at);
"""


class Queued(Exception):
    """A durable write that could not be delivered yet: stored, and to be delivered by the drainer.

    Raised by ``DripClient.request(durable=True)`` (and the typed methods given
    ``durable=True``) instead of the retryable `DripError` that outlasted the
    retries. It is deliberately not a `DripError`: handlers turn it into a
    successful result with ``status: "queued"`` and `idempotency_key`.
    """

    def __init__(self, idempotency_key: str, entry_id: int, reason: DripError) -> None:
        super().__init__(f"queued for later delivery ({reason.code}); idempotency key {idempotency_key}")
        self.idempotency_key = idempotency_key
        self.entry_id = entry_id
        self.reason = reason


@dataclass(frozen=True)
class OutboxEntry:
    """One stored request."""

    id: int
    scope: str
    endpoint: str
    method: str
    path: str
    body: str
    idempotency_key: str
    status: Status
    attempts: int
    created_at: float
    updated_at: float
    next_attempt_at: float
    lease_owner: str | None
    lease_until: float | None
    last_error_code: str | None
    last_status: int | None
    last_error: str | None
    sent_at: float | None

    def summary(self) -> dict[str, Any]:
        """What an operator sees (`list`, `flush`): no body, which may hold metadata."""
        return {
            "id": self.id,
            "status": self.status,
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "created_at": _iso(self.created_at),
            "next_attempt_at": _iso(self.next_attempt_at) if self.status == "pending" else None,
            "last_error_code": self.last_error_code,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "sent_at": _iso(self.sent_at) if self.sent_at else None,
        }


@dataclass(frozen=True)
class OutboxCounts:
    pending: int = 0
    dead: int = 0
    sent: int = 0


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def recorded_marker(path: Path) -> Path:
    """The sidecar that says rows were once recorded in the outbox at `path` (see the module docstring)."""
    return path.with_name(path.name + ".recorded")


_MARKER_TEXT = (
    "drip-mcp recorded outbox rows in the file beside this one. If that file is empty, they were lost:\n"
    "drip-mcp refuses to start on it (run `drip-mcp outbox salvage`).\n"
)

# SQLite result codes (the low byte of an extended code) that mean the file itself is damaged.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _is_damage(exc: sqlite3.Error) -> bool:
    """True when `exc` says the database file is damaged (not busy, locked or full)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return type(exc) is sqlite3.DatabaseError


def _reason(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{name}: {exc}" if name else str(exc)


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _process_gone(pid: int) -> bool:
    """True when no process `pid` runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


class Outbox:
    """The outbox table in one SQLite file (WAL), safe to share between processes of one host.

    Every method is a short synchronous transaction. `owner` names this
    instance's leases (``host:pid:random``); two instances never share one.
    Opening an existing file checks it (``PRAGMA quick_check``) and raises
    `OutboxCorruptError` when it is damaged, or empty although rows were recorded.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        backoff: RetryPolicy = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.time,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self.owner = owner or _new_owner()
        self.lease_s = lease_s
        self.backoff = backoff
        self._clock = clock
        self._lock = threading.RLock()  # `_read` may write the pending delivery marks
        self._delivered: list[tuple[float, int | None, int]] = []  # (at, status, id): see `mark_sent`
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self._on_disk = str(self.path) != ":memory:"
        self._recorded = not self._on_disk
        existing = self._on_disk and self.path.exists() and self.path.stat().st_size > 0
        if self._on_disk:
            self._check_before_open()
            private_database(self.path)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            self._open(synchronous, check=existing)
        except BaseException:
            self._conn.close()
            raise
        if existing and not self._recorded:
            with self._lock:
                has_rows = self._conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None
            if has_rows:
                self._note_recorded()

    def _check_before_open(self) -> None:
        marker = recorded_marker(self.path)
        if not marker.exists():
            return
        if not self.path.exists():
            logger.warning("the outbox %s is missing although rows were recorded in it; starting a new one", self.path)
            marker.unlink(missing_ok=True)
        elif self.path.stat().st_size == 0:
            raise OutboxCorruptError(str(self.path), f"the file is empty, but rows were recorded in it ({marker.name})")
        else:
            self._recorded = True

    def _open(self, synchronous: str, *, check: bool) -> None:
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 10000")
            if check:
                found = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check(3)").fetchall()]
                if found != ["ok"]:  # one line: the first problem, without SQLite's "*** in database" banner
                    lines = [line for text in found for line in text.splitlines() if not line.startswith("***")]
                    raise OutboxCorruptError(str(self.path), f"quick_check: {(lines or found)[0].strip()}")
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            if check and _is_damage(exc):
                raise OutboxCorruptError(str(self.path), _reason(exc)) from exc
            raise
        # WAL + NORMAL: a committed row survives any crash of this process (kill -9 included), which is
        # the failure the outbox exists for, at a fraction of FULL's cost (no fsync per commit: FULL made
        # every usage write ~0.4 ms slower, see bench/RESULTS.md). Only an OS crash or power cut can lose
        # the most recent commits; pass synchronous="FULL" where that matters more than latency.
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        with self._write() as conn:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)

    def _note_recorded(self) -> None:
        """Leave the sidecar marker (once per instance; never fails the write that triggered it)."""
        self._recorded = True
        try:
            fd = os.open(recorded_marker(self.path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            return
        except OSError as exc:
            logger.warning("could not write the outbox marker %s: %s", recorded_marker(self.path), exc)
            return
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_MARKER_TEXT)

    def close(self) -> None:
        with suppress(sqlite3.Error), self._read():  # record the last delivery marks
            pass
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, which also records the delivery marks not yet written."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                marks = self._delivered
                if marks:
                    conn.executemany(
                        "UPDATE outbox SET status = 'sent', sent_at = ?1, updated_at = ?1, attempts = attempts + 1,"
                        " last_status = ?2, lease_owner = NULL, lease_until = NULL WHERE id = ?3",
                        marks,
                    )
                yield conn
                conn.execute("COMMIT")  # may fail too (disk full): the transaction is then rolled back
                del marks[:]
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # keep the error that got us here
                        conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads: after the delivery marks not yet written are (`mark_sent`)."""
        with self._lock:
            if self._delivered:
                with self._write():
                    pass
            yield self._conn

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[OutboxEntry]:
        with self._read() as conn:
            return [OutboxEntry(**dict(row)) for row in conn.execute(sql, params).fetchall()]

    # --- the request path ----------------------------------------------------------------------

    def put(self, *, scope: str, endpoint: str, method: str, path: str, body: bytes, idempotency_key: str) -> int:
        """Store a request before it is sent, leased to this instance; return its id.

        A request already stored under the same scope, endpoint and key is
        reused (the caller is retrying it): it becomes pending again, leased to us.
        Raises `StorageUnavailableError` (retryable, with `idempotency_key`) when
        the row cannot be stored: the disk is full, the file read-only or failing.
        """
        now = self._clock()
        try:
            row = self._insert(scope, endpoint, method, path, body, idempotency_key, now)
        except sqlite3.Error as exc:
            logger.warning("could not store a durable write in the outbox %s: %s", self.path, _reason(exc))
            raise StorageUnavailableError(
                f"drip-mcp could not store this write in its local outbox ({_reason(exc)}); "
                "nothing was recorded or sent.",
                reason=getattr(exc, "sqlite_errorname", None) or type(exc).__name__,
                idempotency_key=idempotency_key,
            ) from exc
        if not self._recorded:
            self._note_recorded()
        return row

    def _insert(
        self, scope: str, endpoint: str, method: str, path: str, body: bytes, idempotency_key: str, now: float
    ) -> int:
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO outbox (scope, endpoint, method, path, body, idempotency_key, status, created_at,"
                " updated_at, next_attempt_at, lease_owner, lease_until)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
                " ON CONFLICT (scope, endpoint, idempotency_key) DO UPDATE SET path = excluded.path,"
                " body = excluded.body, status = 'pending', updated_at = excluded.updated_at,"
                " lease_owner = excluded.lease_owner, lease_until = excluded.lease_until"
                " RETURNING id",
                (
                    scope,
                    endpoint,
                    method,
                    path,
                    body.decode(),
                    idempotency_key,
                    now,
                    now,
                    now,
                    self.owner,
                    now + self.lease_s,
                ),
            ).fetchone()
        return int(row[0])

    def mark_sent(self, entry_id: int, *, status: int | None = None) -> None:
        """Delivered: Drip answered with a success (or replayed the original).

        Written with this instance's next transaction, or before its next read (see the module docstring).
        """
        with self._lock:
            self._delivered.append((self._clock(), status, entry_id))

    def defer(self, entry_id: int, error: DripError) -> float:
        """A retryable failure: stay pending, next attempt after a backoff; return its time."""
        now = self._clock()
        with self._write() as conn:
            row = conn.execute("SELECT attempts FROM outbox WHERE id = ?", (entry_id,)).fetchone()
            attempts = int(row[0]) if row else 0
            retry_after = error.retry_after if isinstance(error, RateLimitError) else None
            due = now + backoff_delay(self.backoff, min(attempts, 30), retry_after)
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?,"
                " last_error_code = ?, last_status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND status = 'pending'",
                (due, now, error.code, error.status, error.message[:500], entry_id),
            )
        return due

    def bury(self, entry_id: int, error: DripError) -> None:
        """A non-retryable failure: keep the row as a dead letter with the error."""
        now = self._clock()
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, updated_at = ?, last_error_code = ?,"
                " last_status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND status = 'pending'",
                (now, error.code, error.status, error.message[:500], entry_id),
            )

    def release(self, entry_id: int) -> None:
        """Give up this instance's lease without an outcome (the send was cancelled)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (entry_id, self.owner),
            )

    # --- draining ------------------------------------------------------------------------------

    def claim(self, scope: str, *, limit: int = 20, force: bool = False) -> list[OutboxEntry]:
        """Lease up to `limit` due pending rows of `scope` to this instance, oldest first.

        ``force`` ignores the backoff schedule (an operator's ``flush``), never another holder's lease.
        """
        now = self._clock()
        due = float("inf") if force else now
        with self._write() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM outbox WHERE status = 'pending' AND scope = ? AND next_attempt_at <= ?"
                    " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
                    (scope, due, now, limit),
                )
            ]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            conn.execute(
                f"UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})",  # noqa: S608 - only ?s
                (self.owner, now + self.lease_s, *ids),
            )
            query = f"SELECT * FROM outbox WHERE id IN ({marks}) ORDER BY id"  # noqa: S608 - only ?s
            rows = conn.execute(query, ids).fetchall()
        return [OutboxEntry(**dict(row)) for row in rows]

    def recover_abandoned(self) -> int:
        """End the leases held by processes of this host that no longer exist; return how many."""
        host = socket.gethostname()
        with self._read() as conn:
            owners = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT lease_owner FROM outbox WHERE status = 'pending' AND lease_owner IS NOT NULL"
                )
            ]
        gone = []
        for owner in owners:
            owner_host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            if owner_host == host and pid.isdigit() and _process_gone(int(pid)):
                gone.append(owner)
        if not gone:
            return 0
        marks = ",".join("?" * len(gone))
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"  # noqa: S608 - only ?s
                f" WHERE status = 'pending' AND lease_owner IN ({marks})",
                gone,
            )
            return cursor.rowcount

    def next_due(self, scope: str) -> float | None:
        """When the next pending row of `scope` may be claimed (None when there is none)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM outbox"
                " WHERE status = 'pending' AND scope = ?",
                (scope,),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    # --- inspection and operator actions -------------------------------------------------------

    def counts(self, scope: str | None = None) -> OutboxCounts:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE (?1 IS NULL OR scope = ?1) GROUP BY status", (scope,)
            ).fetchall()
        found = {status: int(n) for status, n in rows}
        return OutboxCounts(pending=found.get("pending", 0), dead=found.get("dead", 0), sent=found.get("sent", 0))

    def with_key_prefix(self, scope: str, prefix: str) -> list[tuple[str, Status, str | None]]:
        """(idempotency key, status, error code) of `scope`'s rows whose key starts with `prefix`, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT idempotency_key, status, last_error_code FROM outbox"
                " WHERE scope = ? AND substr(idempotency_key, 1, ?) = ? ORDER BY id",
                (scope, len(prefix), prefix),
            ).fetchall()
        return [(str(key), status, code) for key, status, code in rows]

    def get(self, entry_id: int) -> OutboxEntry | None:
        rows = self._rows("SELECT * FROM outbox WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def entries(self, *, status: Status | None = None, limit: int = 50) -> list[OutboxEntry]:
        """The most recent rows (newest first), optionally of one status."""
        return self._rows(
            "SELECT * FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2", (status, limit)
        )

    def retry_dead(self) -> int:
        """Move every dead letter back to pending, due now; return how many."""
        now = self._clock()
        with self._write() as conn:
            return conn.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, updated_at = ?, lease_owner = NULL,"
                " lease_until = NULL WHERE status = 'dead'",
                (now, now),
            ).rowcount

    def prune(self, older_than_s: float = SENT_RETENTION_S) -> int:
        """Delete sent rows older than `older_than_s`; return how many."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE status = 'sent' AND sent_at < ?", (self._clock() - older_than_s,)
            ).rowcount


def open_outbox(path: Path, **kwargs: Any) -> Outbox:
    """Open (creating it and its private directory) the outbox file at `path`."""
    ensure_private_dir(path.parent)
    return Outbox(path, **kwargs)


def outbox_scope(target: str, key: ApiKey) -> str:
    """The scope of a key's rows: the API they target and a one-way fingerprint of the key."""
    return f"{target}|{key.fingerprint}"
