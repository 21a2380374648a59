"""The sandbox ledger's plumbing: one SQLite database (WAL), ids, money, the webhook outbox.

All money is kept as integer micro-USDC (6 decimal places, the USDC base unit),
so balances and charges are exact. Each write runs in one ``BEGIN IMMEDIATE``
transaction: in one process the calls are synchronous (no awaits inside), so a
request is atomic; across processes sharing the file, the immediate write lock
and ``busy_timeout`` serialise writers, which is what keeps idempotent replays
and concurrent charges exact.

Webhook events are written to the ``deliveries`` table in the same
transaction as the change that caused them (an outbox, `StoreBase._enqueue_event`;
the tables belong to `drip_mcp.sandbox.store.webhooks`); the delivery worker
sends them afterwards (see `drip_mcp.sandbox.delivery`).

`StoreBase` is what every domain mixin builds on; `drip_mcp.sandbox.store.Store`
composes them.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, ClassVar

from drip_mcp.paths import private_database

__all__ = [
    "MICROS_PER_USDC",
    "SANDBOX_BUSINESS_ID",
    "Record",
    "StoreBase",
    "from_micros",
    "iso_at",
    "iso_now",
    "new_id",
    "to_micros",
]

Record = dict[str, Any]

MICROS_PER_USDC = 1_000_000
_ID_ALPHABET = string.digits + string.ascii_lowercase
_ID_SPACE = 36**24

SANDBOX_BUSINESS_ID = "csandboxbusiness0000000000"


def new_id() -> str:
    """A CUID-like id: ``c`` followed by 24 random base-36 characters."""
    value = int.from_bytes(secrets.token_bytes(16), "big") % _ID_SPACE
    digits = []
    for _ in range(24):
        value, digit = divmod(value, 36)
        digits.append(_ID_ALPHABET[digit])
    return "c" + "".join(digits)


def iso_now() -> str:
    """The current UTC time as ISO-8601 with milliseconds and a ``Z`` suffix."""
    return iso_at(time.time())


def iso_at(epoch_s: float) -> str:
    """`epoch_s` as ISO-8601 UTC with milliseconds and a ``Z`` suffix."""
    moment = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_micros(amount: Decimal) -> int:
    """USDC `amount` in base units, rounded half-up to 6 decimal places."""
    return int((amount * MICROS_PER_USDC).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micros(micros: int) -> Decimal:
    """Base units back to a 6-decimal USDC `Decimal`."""
    return (Decimal(micros) / MICROS_PER_USDC).quantize(Decimal("0.000001"))


def _json_number(value: object) -> int | float:
    # Request bodies are parsed with Decimal numbers; metadata stores them back as JSON numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=_json_number)


class StoreBase:
    """The connection and transaction plumbing every domain mixin builds on.

    Methods that change state take the write lock (``BEGIN IMMEDIATE``) for
    their whole duration; reads run outside a transaction (WAL snapshot).
    `delivery_listener`, when set, is called after a commit that enqueued
    webhook deliveries.

    Each class in the MRO may set ``SCHEMA`` (SQL run with ``CREATE ... IF NOT
    EXISTS`` statements when the store opens, base classes first) and extend
    `_seed` (starting data, run after every schema).
    """

    SCHEMA: ClassVar[str] = ""

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        *,
        starting_balance_usdc: Decimal = Decimal("100.000000"),
    ) -> None:
        self.starting_balance_micros = to_micros(starting_balance_usdc)
        self.low_balance_threshold_micros = self.starting_balance_micros // 10
        self.delivery_listener: Callable[[], None] | None = None
        self.clock: Callable[[], float] = time.time  # what spending-cap periods are measured by (tests inject one)
        self._deliveries_enqueued = False
        if str(db_path) != ":memory:":
            private_database(Path(db_path))  # 0600 (and its -wal/-shm): it holds whsec_ secrets
        self._conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False, cached_statements=256)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        for schema in self.schemas():
            self._conn.executescript(schema)
        self._seed()

    @classmethod
    def schemas(cls) -> list[str]:
        """The ``SCHEMA`` of every class in the MRO that sets one, base classes first."""
        return [klass.__dict__["SCHEMA"] for klass in reversed(cls.__mro__) if klass.__dict__.get("SCHEMA")]

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def _seed(self) -> None:
        """Write starting data into a new database; a domain extends it and calls ``super()._seed()``."""

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            self._deliveries_enqueued = False
            raise
        conn.execute("COMMIT")
        if self._deliveries_enqueued:
            self._deliveries_enqueued = False
            if self.delivery_listener is not None:
                self.delivery_listener()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Record | None:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Record]:
        return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def _scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()[0]

    # -- webhooks outbox -------------------------------------------------------------

    def _enqueue_event(self, event_type: str, data: Record) -> None:
        """Write one delivery per active webhook subscribed to `event_type` whose ``filters`` pass `data`."""
        from drip_mcp.sandbox.store.webhooks import passes_filters

        hooks = self._conn.execute("SELECT id, events, filters FROM webhooks WHERE is_active = 1").fetchall()
        targets = [
            hook["id"]
            for hook in hooks
            if _subscribed(hook["events"], event_type) and passes_filters(hook["filters"], data)
        ]
        if not targets:
            return
        event_id = new_id()
        now = iso_now()
        payload = json.dumps(
            {"id": event_id, "type": event_type, "createdAt": now, "data": data}, separators=(",", ":")
        ).encode()
        for webhook_id in targets:
            self._conn.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, event_type, payload, status,"
                " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'PENDING', 0, ?)",
                (new_id(), webhook_id, event_id, event_type, payload, now),
            )
        self._deliveries_enqueued = True


def _subscribed(events_json: str, event_type: str) -> bool:
    events = json.loads(events_json)
    return "*" in events or event_type in events
