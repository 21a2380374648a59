"""Pricing plans, usage and charges (`BillingMixin`).

Seeded pricing plans (FLAT, USD), so common meters work out of the box:

=================  ============
unitType           unitPriceUsd
=================  ============
``api_calls``      0.001
``tokens``         0.00001
``llm_tokens``     0.00002
``compute_seconds`` 0.0001
=================  ============
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, _dump, from_micros, iso_now, new_id, to_micros
from drip_mcp.sandbox.store.customers import CustomersMixin

__all__ = ["SEEDED_PLANS", "BillingMixin", "ChargeOutcome", "InsufficientBalance", "UsageOutcome"]

SEEDED_PLANS: tuple[tuple[str, str, str], ...] = (
    ("API calls", "api_calls", "0.001"),
    ("Tokens", "tokens", "0.00001"),
    ("LLM tokens", "llm_tokens", "0.00002"),
    ("Compute seconds", "compute_seconds", "0.0001"),
)


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


class BillingMixin(CustomersMixin):
    """Pricing plans, billable and internal usage, charges and usage totals."""

    SCHEMA = """
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
    CREATE INDEX IF NOT EXISTS charges_status ON charges (status);
    CREATE TABLE IF NOT EXISTS charge_extras (
        charge_id TEXT PRIMARY KEY REFERENCES charges (id),
        failure_reason TEXT,
        refund_reason TEXT,
        refund_note TEXT,
        refund_tx_hash TEXT,
        refunded_at TEXT
    );
    """

    def _seed(self) -> None:
        super()._seed()
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

    # -- hooks the caps and contracts mixins extend (cooperatively, via super()) ----------

    def _unit_price(self, customer_id: str, usage_type: str) -> Decimal | None:
        """The price one unit of `usage_type` costs `customer_id`: the active plan's (None when none)."""
        row = self._conn.execute(
            "SELECT unit_price FROM pricing_plans WHERE unit_type = ? AND is_active = 1", (usage_type,)
        ).fetchone()
        return None if row is None else Decimal(row["unit_price"])

    def _cap_refusal(self, customer: Record, amount: int) -> ApiError | None:
        """Why a charge of `amount` would break a spending cap (None: it may go ahead)."""
        return None

    def _count_cap_usage(self, customer: Record, amount: int) -> None:
        """Add an accepted charge to the customer's spending caps."""

    def _release_cap_usage(self, customer: Record, amount: int) -> None:
        """Give back what `_count_cap_usage` counted for a charge that then failed."""

    def _price_usage(self, customer_id: str, usage: Record) -> int:
        price = self._unit_price(customer_id, usage["usage_type"])
        if price is None:
            raise ApiError(404, "NOT_FOUND", f"No active pricing plan for usageType '{usage['usage_type']}'")
        return to_micros(usage["quantity"] * price)

    def charge(self, customer_id: str | None, external_customer_id: str | None, usage: Record) -> ChargeOutcome:
        """Bill usage at the customer's price (contract override, else the plan's FLAT price).

        A known idempotency key replays the original charge. 404 when no active
        plan matches ``usage_type``; 403 ``SPENDING_CAP_EXCEEDED`` when an
        auto-blocking spending cap would be passed; 402 (`InsufficientBalance`)
        when the balance is short, in which case nothing but a ``charge.failed``
        event is recorded, so the same key may be retried after a top-up.
        """
        refusal: ApiError | None = None
        with self._write():
            existing = self._usage_event("billable", usage["idempotency_key"])
            if existing is not None:
                return ChargeOutcome(existing, self._charge_row(existing["charge_id"]), is_duplicate=True)
            customer = self._resolve_customer(customer_id, external_customer_id)
            amount = self._price_usage(customer["id"], usage)
            refusal = self._cap_refusal(customer, amount)
            if refusal is None and amount > customer["balance_micros"]:
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
                refusal = InsufficientBalance(customer["id"], amount, customer["balance_micros"])
            if refusal is None:
                event, charge_id = self._insert_charge("billable", customer["id"], usage, amount, "CONFIRMED")
                self._confirm_charge(charge_id)
                self._count_cap_usage(customer, amount)
        if refusal is not None:
            raise refusal
        return ChargeOutcome(event, self._charge_row(charge_id), is_duplicate=False)

    def _insert_charge(
        self, kind: str, customer_id: str, usage: Record, amount: int, status: str
    ) -> tuple[Record, str]:
        charge_id = new_id()
        event = self._insert_usage(kind, customer_id, usage, charge_id=charge_id)
        self._conn.execute(
            "INSERT INTO charges (id, usage_id, customer_id, amount_micros, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (charge_id, event["id"], customer_id, amount, status, event["created_at"]),
        )
        return event, charge_id

    def _confirm_charge(self, charge_id: str) -> None:
        """Settle `charge_id`: draw the balance down, mark it CONFIRMED, emit its events (caller checked funds)."""
        now = iso_now()
        self._conn.execute(
            "UPDATE charges SET status = 'CONFIRMED', tx_hash = ?, confirmed_at = ? WHERE id = ?",
            ("0x" + secrets.token_hex(32), now, charge_id),
        )
        charge = self._charge_row(charge_id)
        old_balance = self._customer_row(charge["customer_id"])["balance_micros"]
        new_balance = old_balance - charge["amount_micros"]
        self._conn.execute(
            "UPDATE customers SET balance_micros = ?, updated_at = ? WHERE id = ?",
            (new_balance, now, charge["customer_id"]),
        )
        event = self._one("SELECT * FROM usage_events WHERE id = ?", (charge["usage_id"],))
        assert event is not None
        self._enqueue_event("charge.succeeded", _charge_event_data(charge))
        self._enqueue_event("usage.recorded", _usage_event_data(event))
        threshold = self.low_balance_threshold_micros
        if new_balance < threshold <= old_balance:
            self._enqueue_event(
                "customer.balance.low",
                {
                    "customerId": charge["customer_id"],
                    "balanceUsdc": str(from_micros(new_balance)),
                    "thresholdUsdc": str(from_micros(threshold)),
                },
            )

    def _charge_row(self, charge_id: str) -> Record:
        row = self._one(
            "SELECT c.*, u.usage_type, u.quantity, u.metadata AS usage_metadata, u.created_at AS usage_created_at,"
            " cu.onchain_address, cu.external_customer_id, x.failure_reason, x.refund_reason, x.refund_note,"
            " x.refund_tx_hash, x.refunded_at"
            " FROM charges c JOIN usage_events u ON u.id = c.usage_id JOIN customers cu ON cu.id = c.customer_id"
            " LEFT JOIN charge_extras x ON x.charge_id = c.id WHERE c.id = ?",
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
