"""The sandbox ledger: one SQLite database (WAL) holding every resource.

All money is kept as integer micro-USDC (6 decimal places, the USDC base unit),
so balances and charges are exact. Each write runs in one ``BEGIN IMMEDIATE``
transaction: in one process the calls are synchronous (no awaits inside), so a
request is atomic; across processes sharing the file, the immediate write lock
and ``busy_timeout`` serialise writers, which is what keeps idempotent replays
and concurrent charges exact.

Seeded pricing plans (FLAT, USD), so common meters work out of the box:

=================  ============
unitType           unitPriceUsd
=================  ============
``api_calls``      0.001
``tokens``         0.00001
``llm_tokens``     0.00002
``compute_seconds`` 0.0001
=================  ============

Webhook events are written to the ``deliveries`` table in the same
transaction as the change that caused them (an outbox); the delivery worker
sends them afterwards (see `drip_mcp.sandbox.webhooks`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found

__all__ = [
    "MICROS_PER_USDC",
    "SEEDED_PLANS",
    "ChargeOutcome",
    "Record",
    "Store",
    "from_micros",
    "iso_now",
    "new_id",
    "to_micros",
]

Record = dict[str, Any]

MICROS_PER_USDC = 1_000_000
_ID_ALPHABET = string.digits + string.ascii_lowercase
_ID_SPACE = 36**24

SEEDED_PLANS: tuple[tuple[str, str, str], ...] = (
    ("API calls", "api_calls", "0.001"),
    ("Tokens", "tokens", "0.00001"),
    ("LLM tokens", "llm_tokens", "0.00002"),
    ("Compute seconds", "compute_seconds", "0.0001"),
)

SANDBOX_BUSINESS_ID = "csandboxbusiness0000000000"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    external_customer_id TEXT UNIQUE,
    onchain_address TEXT UNIQUE,
    email TEXT,
    is_internal INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    metadata TEXT,
    balance_micros INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pricing_plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit_type TEXT NOT NULL,
    unit_price TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    pricing_model TEXT NOT NULL DEFAULT 'FLAT',
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pricing_plans_active_unit
    ON pricing_plans (unit_type) WHERE is_active = 1;
CREATE TABLE IF NOT EXISTS usage_events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    usage_type TEXT NOT NULL,
    quantity TEXT NOT NULL,
    units TEXT,
    description TEXT,
    metadata TEXT,
    charge_id TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (kind, idempotency_key)
);
CREATE INDEX IF NOT EXISTS usage_events_customer ON usage_events (customer_id);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    usage_id TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount_micros INTEGER NOT NULL,
    status TEXT NOT NULL,
    tx_hash TEXT,
    created_at TEXT NOT NULL,
    confirmed_at TEXT
);
CREATE INDEX IF NOT EXISTS charges_customer ON charges (customer_id);
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    product_surface TEXT NOT NULL,
    chain TEXT,
    description TEXT,
    metadata TEXT,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    workflow_id TEXT NOT NULL REFERENCES workflows (id),
    external_run_id TEXT UNIQUE,
    correlation_id TEXT,
    parent_run_id TEXT,
    metadata TEXT,
    status TEXT NOT NULL,
    error_message TEXT,
    error_code TEXT,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS run_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL REFERENCES runs (id),
    event_type TEXT NOT NULL,
    quantity TEXT NOT NULL,
    units TEXT,
    description TEXT,
    cost_units TEXT,
    correlation_id TEXT,
    parent_event_id TEXT,
    idempotency_key TEXT UNIQUE,
    metadata TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_events_run ON run_events (run_id, seq);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    response_code INTEGER,
    error_message TEXT,
    next_attempt_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    last_attempt_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS checkout_sessions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    amount_cents INTEGER NOT NULL,
    return_url TEXT NOT NULL,
    cancel_url TEXT,
    metadata TEXT,
    status TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
"""


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


@dataclass(frozen=True)
class ChargeOutcome:
    """What a billable usage request did: the usage event and its charge."""

    usage_event: Record
    charge: Record
    is_duplicate: bool


@dataclass(frozen=True)
class UsageOutcome:
    """What an internal usage request did."""

    usage_event: Record
    is_duplicate: bool


class InsufficientBalance(ApiError):
    """The customer's balance cannot cover a charge (402)."""

    def __init__(self, customer_id: str, amount_micros: int, balance_micros: int) -> None:
        super().__init__(
            402,
            "PAYMENT_REQUIRED",
            f"Insufficient balance: charge of {from_micros(amount_micros)} USDC exceeds "
            f"available {from_micros(balance_micros)} USDC",
        )
        self.customer_id = customer_id
        self.amount_micros = amount_micros
        self.balance_micros = balance_micros


class Store:
    """Every sandbox resource, persisted in SQLite.

    Methods that change state take the write lock (``BEGIN IMMEDIATE``) for
    their whole duration; reads run outside a transaction (WAL snapshot).
    `delivery_listener`, when set, is called after a commit that enqueued
    webhook deliveries.
    """

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        *,
        starting_balance_usdc: Decimal = Decimal("100.000000"),
    ) -> None:
        self.starting_balance_micros = to_micros(starting_balance_usdc)
        self.low_balance_threshold_micros = self.starting_balance_micros // 10
        self.delivery_listener: Callable[[], None] | None = None
        self._deliveries_enqueued = False
        self._conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False, cached_statements=256)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(_SCHEMA)
        self._seed_pricing_plans()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

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

    def _seed_pricing_plans(self) -> None:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM pricing_plans LIMIT 1").fetchone():
                return
            now = iso_now()
            for name, unit_type, price in SEEDED_PLANS:
                conn.execute(
                    "INSERT INTO pricing_plans (id, name, unit_type, unit_price, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (new_id(), name, unit_type, price, now, now),
                )

    # -- webhooks outbox -------------------------------------------------------------

    def _enqueue_event(self, event_type: str, data: Record) -> None:
        """Write one delivery per active webhook subscribed to `event_type`."""
        hooks = self._conn.execute("SELECT id, events FROM webhooks WHERE is_active = 1").fetchall()
        targets = [hook["id"] for hook in hooks if _subscribed(hook["events"], event_type)]
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

    # -- customers -------------------------------------------------------------------

    def _insert_customer(
        self,
        *,
        external_customer_id: str | None,
        onchain_address: str | None = None,
        email: str | None = None,
        is_internal: bool = False,
        metadata: Any = None,
    ) -> Record:
        now = iso_now()
        customer_id = new_id()
        self._conn.execute(
            "INSERT INTO customers (id, external_customer_id, onchain_address, email, is_internal,"
            " metadata, balance_micros, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                customer_id,
                external_customer_id,
                onchain_address,
                email,
                int(is_internal),
                _dump(metadata),
                self.starting_balance_micros,
                now,
                now,
            ),
        )
        customer = self._customer_row(customer_id)
        self._enqueue_event("customer.created", {"customerId": customer_id, **_public_customer(customer)})
        return customer

    def create_customer(
        self,
        *,
        external_customer_id: str | None,
        onchain_address: str | None,
        email: str | None,
        is_internal: bool,
        metadata: Any,
    ) -> Record:
        """Create a customer; 409 ``DUPLICATE_CUSTOMER`` if its external id or address is taken."""
        with self._write() as conn:
            existing = conn.execute(
                "SELECT id FROM customers WHERE external_customer_id = ? OR onchain_address = ?",
                (external_customer_id, onchain_address),
            ).fetchone()
            if existing is not None:
                raise ApiError(
                    409,
                    "DUPLICATE_CUSTOMER",
                    "A customer with this externalCustomerId or onchainAddress already exists",
                    extra={"existingCustomerId": existing["id"]},
                )
            return self._insert_customer(
                external_customer_id=external_customer_id,
                onchain_address=onchain_address,
                email=email,
                is_internal=is_internal,
                metadata=metadata,
            )

    def _customer_row(self, customer_id: str) -> Record:
        row = self._one("SELECT * FROM customers WHERE id = ?", (customer_id,))
        if row is None:
            raise not_found("Customer", customer_id)
        return row

    def customer(self, customer_id: str) -> Record:
        """The customer `customer_id` (404 if unknown)."""
        return self._customer_row(customer_id)

    def list_customers(self, *, limit: int, offset: int, status: str | None) -> list[Record]:
        """Customers, newest first."""
        return self._all(
            "SELECT * FROM customers WHERE (?1 IS NULL OR status = ?1) ORDER BY rowid DESC LIMIT ?2 OFFSET ?3",
            (status, limit, offset),
        )

    def _resolve_customer(self, customer_id: str | None, external_customer_id: str | None) -> Record:
        """By id (404 if unknown) or by external id (created when unknown)."""
        if customer_id is not None:
            return self._customer_row(customer_id)
        assert external_customer_id is not None
        row = self._one("SELECT * FROM customers WHERE external_customer_id = ?", (external_customer_id,))
        if row is not None:
            return row
        return self._insert_customer(external_customer_id=external_customer_id)

    def balance(self, customer_id: str) -> Decimal:
        """The customer's balance in USDC."""
        return from_micros(self._customer_row(customer_id)["balance_micros"])

    # -- pricing plans ---------------------------------------------------------------

    def list_pricing_plans(self) -> list[Record]:
        """All pricing plans, oldest first."""
        return self._all("SELECT * FROM pricing_plans ORDER BY rowid")

    def create_pricing_plan(
        self, *, name: str, unit_type: str, unit_price: Decimal, currency: str, is_active: bool
    ) -> Record:
        """Create a FLAT plan; 409 ``DUPLICATE_PRICING_PLAN`` for a second active plan per unit type."""
        with self._write() as conn:
            existing = conn.execute(
                "SELECT id FROM pricing_plans WHERE unit_type = ? AND is_active = 1", (unit_type,)
            ).fetchone()
            if existing is not None and is_active:
                raise ApiError(
                    409,
                    "DUPLICATE_PRICING_PLAN",
                    f"An active pricing plan for unitType '{unit_type}' already exists",
                    extra={"existingPlanId": existing["id"]},
                )
            plan_id, now = new_id(), iso_now()
            conn.execute(
                "INSERT INTO pricing_plans (id, name, unit_type, unit_price, currency, is_active,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (plan_id, name, unit_type, str(unit_price), currency, int(is_active), now, now),
            )
        return dict(self._one("SELECT * FROM pricing_plans WHERE id = ?", (plan_id,)) or {})

    def unit_prices(self) -> dict[str, Decimal]:
        """Active plan price per unit type."""
        rows = self._conn.execute("SELECT unit_type, unit_price FROM pricing_plans WHERE is_active = 1")
        return {row["unit_type"]: Decimal(row["unit_price"]) for row in rows}

    # -- usage and charges -----------------------------------------------------------

    def _usage_event(self, kind: str, idempotency_key: str) -> Record | None:
        return self._one("SELECT * FROM usage_events WHERE kind = ? AND idempotency_key = ?", (kind, idempotency_key))

    def _insert_usage(self, kind: str, customer_id: str, usage: Record, charge_id: str | None = None) -> Record:
        event = {
            "id": new_id(),
            "kind": kind,
            "idempotency_key": usage["idempotency_key"],
            "customer_id": customer_id,
            "usage_type": usage["usage_type"],
            "quantity": str(usage["quantity"]),
            "units": usage.get("units"),
            "description": usage.get("description"),
            "metadata": _dump(usage.get("metadata")),
            "charge_id": charge_id,
            "created_at": iso_now(),
        }
        self._conn.execute(
            "INSERT INTO usage_events (id, kind, idempotency_key, customer_id, usage_type, quantity, units,"
            " description, metadata, charge_id, created_at)"
            " VALUES (:id, :kind, :idempotency_key, :customer_id, :usage_type, :quantity, :units,"
            " :description, :metadata, :charge_id, :created_at)",
            event,
        )
        return event

    def track_usage(self, customer_id: str | None, external_customer_id: str | None, usage: Record) -> UsageOutcome:
        """Record internal usage (no charge); a known idempotency key replays the original."""
        with self._write():
            existing = self._usage_event("internal", usage["idempotency_key"])
            if existing is not None:
                return UsageOutcome(existing, is_duplicate=True)
            customer = self._resolve_customer(customer_id, external_customer_id)
            event = self._insert_usage("internal", customer["id"], usage)
            self._enqueue_event("usage.recorded", _usage_event_data(event))
            return UsageOutcome(event, is_duplicate=False)

    def charge(self, customer_id: str | None, external_customer_id: str | None, usage: Record) -> ChargeOutcome:
        """Bill usage at the matching plan's FLAT price, drawing the customer's balance down.

        A known idempotency key replays the original charge. 404 when no active
        plan matches ``usage_type``; 402 (`InsufficientBalance`) when the
        balance is short, in which case nothing but a ``charge.failed`` event is
        recorded, so the same key may be retried after a top-up.
        """
        with self._write() as conn:
            existing = self._usage_event("billable", usage["idempotency_key"])
            if existing is not None:
                return ChargeOutcome(existing, self._charge_row(existing["charge_id"]), is_duplicate=True)
            customer = self._resolve_customer(customer_id, external_customer_id)
            price = conn.execute(
                "SELECT unit_price FROM pricing_plans WHERE unit_type = ? AND is_active = 1",
                (usage["usage_type"],),
            ).fetchone()
            if price is None:
                raise ApiError(
                    404,
                    "NOT_FOUND",
                    f"No active pricing plan for usageType '{usage['usage_type']}'",
                )
            amount = to_micros(usage["quantity"] * Decimal(price["unit_price"]))
            balance = customer["balance_micros"]
            shortfall = amount > balance
            if shortfall:
                self._enqueue_event(
                    "charge.failed",
                    {
                        "customerId": customer["id"],
                        "usageType": usage["usage_type"],
                        "quantity": str(usage["quantity"]),
                        "amountUsdc": str(from_micros(amount)),
                        "reason": "INSUFFICIENT_BALANCE",
                    },
                )
            else:
                outcome = self._settle_charge(customer, usage, amount)
        if shortfall:
            raise InsufficientBalance(customer["id"], amount, balance)
        return outcome

    def _settle_charge(self, customer: Record, usage: Record, amount: int) -> ChargeOutcome:
        charge_id, now = new_id(), iso_now()
        event = self._insert_usage("billable", customer["id"], usage, charge_id=charge_id)
        self._conn.execute(
            "INSERT INTO charges (id, usage_id, customer_id, amount_micros, status, tx_hash, created_at,"
            " confirmed_at) VALUES (?, ?, ?, ?, 'CONFIRMED', ?, ?, ?)",
            (charge_id, event["id"], customer["id"], amount, "0x" + secrets.token_hex(32), now, now),
        )
        old_balance = customer["balance_micros"]
        new_balance = old_balance - amount
        self._conn.execute(
            "UPDATE customers SET balance_micros = ?, updated_at = ? WHERE id = ?",
            (new_balance, now, customer["id"]),
        )
        charge = self._charge_row(charge_id)
        self._enqueue_event("charge.succeeded", _charge_event_data(charge))
        self._enqueue_event("usage.recorded", _usage_event_data(event))
        threshold = self.low_balance_threshold_micros
        if new_balance < threshold <= old_balance:
            self._enqueue_event(
                "customer.balance.low",
                {
                    "customerId": customer["id"],
                    "balanceUsdc": str(from_micros(new_balance)),
                    "thresholdUsdc": str(from_micros(threshold)),
                },
            )
        return ChargeOutcome(event, charge, is_duplicate=False)

    def _charge_row(self, charge_id: str) -> Record:
        row = self._one(
            "SELECT c.*, u.usage_type, u.quantity, u.metadata AS usage_metadata, u.created_at AS usage_created_at,"
            " cu.onchain_address, cu.external_customer_id"
            " FROM charges c JOIN usage_events u ON u.id = c.usage_id JOIN customers cu ON cu.id = c.customer_id"
            " WHERE c.id = ?",
            (charge_id,),
        )
        if row is None:
            raise not_found("Charge", charge_id)
        return row

    def charge_record(self, charge_id: str) -> Record:
        """The charge `charge_id` with its usage event and customer (404 if unknown)."""
        return self._charge_row(charge_id)

    def list_charges(self, *, limit: int, offset: int, status: str | None, customer_id: str | None) -> list[Record]:
        """Charges, newest first."""
        ids = self._conn.execute(
            "SELECT id FROM charges WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR customer_id = ?2)"
            " ORDER BY rowid DESC LIMIT ?3 OFFSET ?4",
            (status, customer_id, limit, offset),
        ).fetchall()
        return [self._charge_row(row["id"]) for row in ids]

    def list_usage(self, *, limit: int, customer_id: str | None) -> list[Record]:
        """Usage events (billable and internal), newest first, with customer and charge columns."""
        return self._all(
            "SELECT u.*, cu.onchain_address, cu.external_customer_id,"
            " c.amount_micros, c.tx_hash, c.status AS charge_status"
            " FROM usage_events u JOIN customers cu ON cu.id = u.customer_id"
            " LEFT JOIN charges c ON c.id = u.charge_id"
            " WHERE (?1 IS NULL OR u.customer_id = ?1) ORDER BY u.rowid DESC LIMIT ?2",
            (customer_id, limit),
        )

    def usage_quantities(
        self,
        *,
        period_start: str,
        period_end: str,
        customer_id: str | None,
        include_charged: bool,
    ) -> list[Record]:
        """Per usage type: summed quantity and event count in [start, end]."""
        rows = self._all(
            "SELECT usage_type, quantity FROM usage_events WHERE created_at >= ? AND created_at <= ?"
            " AND (?3 IS NULL OR customer_id = ?3) AND (?4 OR charge_id IS NULL) ORDER BY rowid",
            (period_start, period_end, customer_id, int(include_charged)),
        )
        totals: dict[str, Record] = {}
        for row in rows:
            entry = totals.setdefault(row["usage_type"], {"quantity": Decimal(0), "event_count": 0})
            entry["quantity"] += Decimal(row["quantity"])
            entry["event_count"] += 1
        return [{"usage_type": usage_type, **entry} for usage_type, entry in totals.items()]

    # -- test and proof helpers ------------------------------------------------------

    def count_usage_events(self, customer_id: str | None = None, *, kind: str | None = None) -> int:
        """Number of usage events (optionally of one customer, or of ``kind`` billable/internal)."""
        return int(
            self._scalar(
                "SELECT COUNT(*) FROM usage_events WHERE (?1 IS NULL OR customer_id = ?1)"
                " AND (?2 IS NULL OR kind = ?2)",
                (customer_id, kind),
            )
        )

    def usage_idempotency_keys(self) -> list[str]:
        """Every stored usage idempotency key, oldest first."""
        return [row[0] for row in self._conn.execute("SELECT idempotency_key FROM usage_events ORDER BY rowid")]

    def charges_total(self, customer_id: str) -> Decimal:
        """Sum of the customer's charges in USDC."""
        total = self._scalar(
            "SELECT COALESCE(SUM(amount_micros), 0) FROM charges WHERE customer_id = ?", (customer_id,)
        )
        return from_micros(int(total))

    def count_charges(self, customer_id: str | None = None) -> int:
        """Number of charges (optionally of one customer)."""
        return int(self._scalar("SELECT COUNT(*) FROM charges WHERE (?1 IS NULL OR customer_id = ?1)", (customer_id,)))

    # -- workflows and runs -----------------------------------------------------------

    def create_workflow(self, fields: Record) -> Record:
        """Create a workflow; 409 if its slug exists."""
        with self._write():
            return self._insert_workflow(fields)

    def _insert_workflow(self, fields: Record) -> Record:
        if self._one("SELECT id FROM workflows WHERE slug = ?", (fields["slug"],)) is not None:
            raise ApiError(409, "DUPLICATE_WORKFLOW", f"A workflow with slug '{fields['slug']}' already exists")
        now = iso_now()
        row = {
            "id": new_id(),
            "name": fields["name"],
            "slug": fields["slug"],
            "product_surface": fields.get("product_surface") or "CUSTOM",
            "chain": fields.get("chain"),
            "description": fields.get("description"),
            "metadata": _dump(fields.get("metadata")),
            "created_at": now,
        }
        self._conn.execute(
            "INSERT INTO workflows (id, name, slug, product_surface, chain, description, metadata, created_at,"
            " updated_at) VALUES (:id, :name, :slug, :product_surface, :chain, :description, :metadata,"
            " :created_at, :created_at)",
            row,
        )
        return self._workflow_row(row["id"])

    def _workflow_row(self, workflow_id: str) -> Record:
        row = self._one(
            "SELECT w.*, (SELECT COUNT(*) FROM runs r WHERE r.workflow_id = w.id) AS run_count"
            " FROM workflows w WHERE w.id = ?",
            (workflow_id,),
        )
        if row is None:
            raise not_found("Workflow", workflow_id)
        return row

    def list_workflows(self, *, limit: int) -> list[Record]:
        """Workflows, newest first, with their run counts."""
        ids = self._conn.execute("SELECT id FROM workflows ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [self._workflow_row(row["id"]) for row in ids]

    def start_run(self, fields: Record) -> Record:
        """Create a PENDING run of an existing workflow for an existing customer."""
        with self._write():
            return self._insert_run(fields, self._workflow_row(fields["workflow_id"]))

    def _insert_run(self, fields: Record, workflow: Record, *, status: str = "PENDING") -> Record:
        self._customer_row(fields["customer_id"])
        external_run_id = fields.get("external_run_id")
        existing = (
            self._one("SELECT id FROM runs WHERE external_run_id = ?", (external_run_id,))
            if external_run_id is not None
            else None
        )
        if existing is not None:
            # Like existingCustomerId on a duplicate customer: lets a retrying client find the run it made.
            raise ApiError(
                409,
                "DUPLICATE_RUN",
                f"A run with externalRunId '{external_run_id}' already exists",
                extra={"existingRunId": existing["id"]},
            )
        now_s = time.time()
        now = iso_at(now_s)
        run_id = new_id()
        self._conn.execute(
            "INSERT INTO runs (id, customer_id, workflow_id, external_run_id, correlation_id, parent_run_id,"
            " metadata, status, started_ms, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                fields["customer_id"],
                workflow["id"],
                external_run_id,
                fields.get("correlation_id"),
                fields.get("parent_run_id"),
                _dump(fields.get("metadata")),
                status,
                int(now_s * 1000),
                now,
                now,
            ),
        )
        return self.run(run_id)

    def run(self, run_id: str) -> Record:
        """The run with its workflow name and event totals (404 if unknown)."""
        row = self._one(
            "SELECT r.*, w.name AS workflow_name, cu.external_customer_id AS customer_name,"
            " (SELECT COUNT(*) FROM run_events e WHERE e.run_id = r.id) AS event_count"
            " FROM runs r JOIN workflows w ON w.id = r.workflow_id JOIN customers cu ON cu.id = r.customer_id"
            " WHERE r.id = ?",
            (run_id,),
        )
        if row is None:
            raise not_found("Run", run_id)
        quantity, cost = Decimal(0), Decimal(0)
        for event in self._conn.execute(
            "SELECT quantity, cost_units FROM run_events WHERE run_id = ?", (run_id,)
        ).fetchall():
            quantity += Decimal(event["quantity"])
            cost += Decimal(event["cost_units"] or 0)
        row["total_quantity"] = quantity
        row["total_cost_units"] = cost
        return row

    def end_run(self, run_id: str, *, status: str, error_message: str | None, error_code: str | None) -> Record:
        """Move a run to a terminal status; 409 ``RUN_ALREADY_ENDED`` if it is terminal already."""
        with self._write():
            run = self.run(run_id)
            if run["ended_ms"] is not None:
                raise _run_already_ended(run)
            self._finish_run(run_id, status=status, error_message=error_message, error_code=error_code)
            return self.run(run_id)

    def _finish_run(self, run_id: str, *, status: str, error_message: str | None, error_code: str | None) -> None:
        now_s = time.time()
        self._conn.execute(
            "UPDATE runs SET status = ?, error_message = ?, error_code = ?, ended_ms = ?, ended_at = ? WHERE id = ?",
            (status, error_message, error_code, int(now_s * 1000), iso_at(now_s), run_id),
        )

    def add_run_events(self, events: list[Record]) -> list[tuple[Record, bool]]:
        """Append events to their runs; each is (event, is_duplicate) in input order.

        An event whose idempotency key is stored already is not added again;
        the stored one is returned. The first event moves a PENDING run to
        RUNNING; events on an ended run are refused with 409.
        """
        with self._write():
            return [self._insert_run_event(event) for event in events]

    def _insert_run_event(self, fields: Record) -> tuple[Record, bool]:
        key = fields.get("idempotency_key")
        if key is not None:
            existing = self._one("SELECT * FROM run_events WHERE idempotency_key = ?", (key,))
            if existing is not None:
                return existing, True
        run = self.run(fields["run_id"])
        if run["ended_ms"] is not None:
            raise _run_already_ended(run)
        if run["status"] == "PENDING":
            self._conn.execute("UPDATE runs SET status = 'RUNNING' WHERE id = ?", (run["id"],))
        event = {
            "id": new_id(),
            "run_id": run["id"],
            "event_type": fields["event_type"],
            "quantity": str(fields.get("quantity", 1)),
            "units": fields.get("units"),
            "description": fields.get("description"),
            "cost_units": None if fields.get("cost_units") is None else str(fields["cost_units"]),
            "correlation_id": fields.get("correlation_id"),
            "parent_event_id": fields.get("parent_event_id"),
            "idempotency_key": key,
            "metadata": _dump(fields.get("metadata")),
            "created_at": iso_now(),
        }
        cursor = self._conn.execute(
            "INSERT INTO run_events (id, run_id, event_type, quantity, units, description, cost_units,"
            " correlation_id, parent_event_id, idempotency_key, metadata, created_at) VALUES (:id, :run_id,"
            " :event_type, :quantity, :units, :description, :cost_units, :correlation_id, :parent_event_id,"
            " :idempotency_key, :metadata, :created_at)",
            event,
        )
        event["seq"] = cursor.lastrowid
        return event, False

    def run_events(self, run_id: str, *, after_seq: int, limit: int) -> list[Record]:
        """Up to `limit` events of a run with ``seq > after_seq``, oldest first."""
        return self._all(
            "SELECT * FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, after_seq, limit),
        )

    def record_run(self, fields: Record, events: list[Record]) -> tuple[Record, int]:
        """Create a run with its events and end it at once; returns (run, events created).

        ``workflow`` may be a workflow id or slug; an unknown slug creates the
        workflow, named after the slug in Title Case.
        """
        with self._write():
            reference = fields["workflow"]
            workflow = self._one("SELECT * FROM workflows WHERE id = ?1 OR slug = ?1", (reference,))
            if workflow is None:
                name = " ".join(part.capitalize() for part in reference.replace("-", " ").replace("_", " ").split())
                workflow = self._insert_workflow({"name": name or reference, "slug": reference})
            run = self._insert_run(fields, workflow, status="RUNNING")
            for event in events:
                self._insert_run_event({**event, "run_id": run["id"]})
            self._finish_run(
                run["id"],
                status=fields["status"],
                error_message=fields.get("error_message"),
                error_code=fields.get("error_code"),
            )
            return self.run(run["id"]), len(events)

    # -- webhooks --------------------------------------------------------------------

    def create_webhook(self, *, url: str, events: list[str], description: str | None, secret: str) -> Record:
        """Register a webhook endpoint."""
        webhook_id, now = new_id(), iso_now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO webhooks (id, url, events, description, secret, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (webhook_id, url, json.dumps(events), description, secret, now, now),
            )
        return self.webhook(webhook_id)

    def webhook(self, webhook_id: str) -> Record:
        """The webhook with its delivery stats (404 if unknown)."""
        row = self._one(
            "SELECT w.*, COUNT(d.id) AS total,"
            " COALESCE(SUM(d.status = 'DELIVERED'), 0) AS delivered,"
            " COALESCE(SUM(d.status = 'FAILED'), 0) AS failed,"
            " COALESCE(SUM(d.status = 'PENDING'), 0) AS pending"
            " FROM webhooks w LEFT JOIN deliveries d ON d.webhook_id = w.id WHERE w.id = ? GROUP BY w.id",
            (webhook_id,),
        )
        if row is None:
            raise not_found("Webhook", webhook_id)
        return row

    def list_webhooks(self) -> list[Record]:
        """Webhooks, newest first, with delivery stats."""
        ids = self._conn.execute("SELECT id FROM webhooks ORDER BY rowid DESC").fetchall()
        return [self.webhook(row["id"]) for row in ids]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its deliveries (404 if unknown)."""
        with self._write() as conn:
            if conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 0:
                raise not_found("Webhook", webhook_id)

    def rotate_webhook_secret(self, webhook_id: str, secret: str) -> None:
        """Replace a webhook's secret (404 if unknown)."""
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?", (secret, iso_now(), webhook_id)
            )
            if updated.rowcount == 0:
                raise not_found("Webhook", webhook_id)

    def create_test_delivery(self, webhook_id: str) -> Record:
        """Record a ``webhook.test`` delivery for one webhook (not picked up by the worker)."""
        webhook = self.webhook(webhook_id)
        event_id, delivery_id, now = new_id(), new_id(), iso_now()
        payload = json.dumps(
            {
                "id": event_id,
                "type": "webhook.test",
                "createdAt": now,
                "data": {"webhookId": webhook_id, "message": "Test event from the Drip sandbox"},
            },
            separators=(",", ":"),
        ).encode()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, event_type, payload, status, next_attempt_at,"
                " created_at) VALUES (?, ?, ?, 'webhook.test', ?, 'SENDING', 0, ?)",
                (delivery_id, webhook["id"], event_id, payload, now),
            )
        return self.delivery(delivery_id)

    def due_deliveries(self, now: float, limit: int = 50) -> list[Record]:
        """PENDING deliveries whose next attempt is due, with their webhook's url and secret."""
        return self._all(
            "SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'PENDING' AND d.next_attempt_at <= ? ORDER BY d.rowid LIMIT ?",
            (now, limit),
        )

    def next_delivery_due(self) -> float | None:
        """When the earliest PENDING delivery is due (epoch seconds), or None."""
        value = self._scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'PENDING'")
        return None if value is None else float(value)

    def delivery(self, delivery_id: str) -> Record:
        """One delivery with its webhook's url and secret (404 if unknown)."""
        row = self._one(
            "SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
            (delivery_id,),
        )
        if row is None:
            raise not_found("Delivery", delivery_id)
        return row

    def list_deliveries(self, webhook_id: str | None = None) -> list[Record]:
        """Deliveries, oldest first (optionally of one webhook)."""
        return self._all("SELECT * FROM deliveries WHERE (?1 IS NULL OR webhook_id = ?1) ORDER BY rowid", (webhook_id,))

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: str,
        response_code: int | None,
        error_message: str | None,
        next_attempt_at: float = 0.0,
    ) -> None:
        """Store the outcome of one delivery attempt."""
        with self._write() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, response_code = ?, error_message = ?,"
                " next_attempt_at = ?, last_attempt_at = ? WHERE id = ?",
                (status, response_code, error_message, next_attempt_at, iso_now(), delivery_id),
            )

    # -- checkout --------------------------------------------------------------------

    def create_checkout(
        self,
        *,
        customer_id: str | None,
        external_customer_id: str | None,
        amount_cents: int,
        return_url: str,
        cancel_url: str | None,
        metadata: Any,
        expires_at: float,
    ) -> Record:
        """Open a checkout session; an unknown external customer id creates the customer."""
        session_id = new_id()
        with self._write() as conn:
            customer = self._resolve_customer(customer_id, external_customer_id)
            conn.execute(
                "INSERT INTO checkout_sessions (id, customer_id, amount_cents, return_url, cancel_url, metadata,"
                " status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'OPEN', ?, ?)",
                (
                    session_id,
                    customer["id"],
                    amount_cents,
                    return_url,
                    cancel_url,
                    _dump(metadata),
                    expires_at,
                    iso_now(),
                ),
            )
        return self.checkout_session(session_id)

    def checkout_session(self, session_id: str) -> Record:
        """A checkout session (404 if unknown)."""
        row = self._one("SELECT * FROM checkout_sessions WHERE id = ?", (session_id,))
        if row is None:
            raise not_found("Checkout session", session_id)
        return row

    def complete_checkout(self, session_id: str, now: float) -> Record:
        """Credit an OPEN, unexpired session's amount to its customer exactly once.

        Completing a COMPLETED session again changes nothing; an expired one
        is refused with 410 ``CHECKOUT_EXPIRED``.
        """
        with self._write() as conn:
            session = self.checkout_session(session_id)
            if session["status"] == "OPEN":
                if session["expires_at"] < now:
                    raise ApiError(410, "CHECKOUT_EXPIRED", "This checkout session has expired")
                conn.execute(
                    "UPDATE checkout_sessions SET status = 'COMPLETED', completed_at = ? WHERE id = ?",
                    (iso_at(now), session_id),
                )
                conn.execute(
                    "UPDATE customers SET balance_micros = balance_micros + ?, updated_at = ? WHERE id = ?",
                    (session["amount_cents"] * (MICROS_PER_USDC // 100), iso_at(now), session["customer_id"]),
                )
            return self.checkout_session(session_id)


def _subscribed(events_json: str, event_type: str) -> bool:
    events = json.loads(events_json)
    return "*" in events or event_type in events


def _run_already_ended(run: Record) -> ApiError:
    return ApiError(409, "RUN_ALREADY_ENDED", f"Run {run['id']} has already ended with status {run['status']}")


def _public_customer(customer: Record) -> Record:
    return {
        "externalCustomerId": customer["external_customer_id"],
        "onchainAddress": customer["onchain_address"],
        "isInternal": bool(customer["is_internal"]),
    }


def _usage_event_data(event: Record) -> Record:
    return {
        "usageEventId": event["id"],
        "customerId": event["customer_id"],
        "usageType": event["usage_type"],
        "quantity": event["quantity"],
        "chargeId": event["charge_id"],
    }


def _charge_event_data(charge: Record) -> Record:
    return {
        "chargeId": charge["id"],
        "customerId": charge["customer_id"],
        "usageId": charge["usage_id"],
        "usageType": charge["usage_type"],
        "quantity": charge["quantity"],
        "amountUsdc": str(from_micros(charge["amount_micros"])),
        "status": charge["status"],
    }
