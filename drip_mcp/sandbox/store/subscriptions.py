"""Recurring subscriptions and their lifecycle (`SubscriptionsMixin`).

Time-driven changes happen lazily, by the store's clock, whenever a
subscription is read or changed (`_advance`): a trial that has ended becomes
ACTIVE (``subscription.trial_ended``); a paused subscription whose
``resumesAt`` has passed resumes (``subscription.resumed``); a period that has
ended either cancels (``cancelAtPeriodEnd``, ``subscription.cancelled``) or
renews (``subscription.renewed``). Renewals move the period only: the sandbox
does not draw subscription fees from the customer's balance.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import SANDBOX_BUSINESS_ID, Record, _dump, iso_at, new_id
from drip_mcp.sandbox.store.clock import ClockMixin, add_interval, parse_iso
from drip_mcp.sandbox.store.customers import CustomersMixin

__all__ = ["SubscriptionsMixin"]

_ENDED = ("CANCELLED", "EXPIRED")
_MAX_CATCH_UP = 1000


def _iso(moment: datetime) -> str:
    return iso_at(moment.timestamp())


def _at(value: str) -> datetime:
    moment = parse_iso(value)
    assert moment is not None
    return moment


class SubscriptionsMixin(ClockMixin, CustomersMixin):
    """Subscriptions: create, read, update, cancel, pause and resume."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS subscriptions (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        name TEXT NOT NULL,
        description TEXT,
        interval TEXT NOT NULL,
        price_usdc TEXT NOT NULL,
        status TEXT NOT NULL,
        current_period_start TEXT NOT NULL,
        current_period_end TEXT NOT NULL,
        cancelled_at TEXT,
        cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
        paused_at TEXT,
        resumes_at TEXT,
        trial_start TEXT,
        trial_end TEXT,
        included_usage INTEGER,
        overage_unit_type TEXT,
        metadata TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions (customer_id);
    """

    def create_subscription(self, fields: Record) -> Record:
        """Create an ACTIVE subscription, or TRIALING for ``trial_days`` (404 for an unknown customer)."""
        with self._write() as conn:
            self._customer_row(fields["customer_id"])
            now = self._now()
            trial_days = fields.get("trial_days")
            trial: tuple[str | None, str | None]
            if trial_days:
                status, trial_end = "TRIALING", now + timedelta(days=trial_days)
                period_end, trial = trial_end, (_iso(now), _iso(trial_end))
            else:
                status, period_end, trial = "ACTIVE", add_interval(now, fields["interval"]), (None, None)
            sub_id = new_id()
            conn.execute(
                "INSERT INTO subscriptions (id, customer_id, name, description, interval, price_usdc, status,"
                " current_period_start, current_period_end, trial_start, trial_end, included_usage,"
                " overage_unit_type, metadata, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sub_id,
                    fields["customer_id"],
                    fields["name"],
                    fields.get("description"),
                    fields["interval"],
                    str(fields["price_usdc"]),
                    status,
                    _iso(now),
                    _iso(period_end),
                    *trial,
                    fields.get("included_usage"),
                    fields.get("overage_unit_type"),
                    _dump(fields.get("metadata")),
                    _iso(now),
                    _iso(now),
                ),
            )
            sub = self._subscription_row(sub_id)
            self._enqueue_event("subscription.created", _event_data(sub))
            return sub

    def _subscription_row(self, sub_id: str) -> Record:
        row = self._one("SELECT * FROM subscriptions WHERE id = ?", (sub_id,))
        if row is None:
            raise not_found("Subscription", sub_id)
        return row

    def subscription(self, sub_id: str) -> Record:
        """The subscription, brought up to date with the clock (404 if unknown)."""
        with self._write():
            return self._advance(self._subscription_row(sub_id))

    def list_subscriptions(self, *, customer_id: str | None, status: str | None, limit: int) -> list[Record]:
        """Subscriptions, newest first, brought up to date with the clock."""
        with self._write():
            rows = self._all(
                "SELECT * FROM subscriptions WHERE (?1 IS NULL OR customer_id = ?1) ORDER BY rowid DESC",
                (customer_id,),
            )
            current = [self._advance(row) for row in rows]
        return [row for row in current if status is None or row["status"] == status][:limit]

    def _set(self, sub_id: str, **columns: object) -> Record:
        columns["updated_at"] = self._now_iso()
        assignments = ", ".join(f"{name} = :{name}" for name in columns)
        self._conn.execute(f"UPDATE subscriptions SET {assignments} WHERE id = :id", {**columns, "id": sub_id})  # noqa: S608
        return self._subscription_row(sub_id)

    def _advance(self, sub: Record) -> Record:
        """Apply every time-driven change due by now."""
        now = self._now()
        for _ in range(_MAX_CATCH_UP):
            status = sub["status"]
            if status in _ENDED:
                return sub
            if status == "PAUSED":
                if sub["resumes_at"] is None or _at(sub["resumes_at"]) > now:
                    return sub
                sub = self._start_period(sub, _at(sub["resumes_at"]), "subscription.resumed")
                continue
            period_end = _at(sub["current_period_end"])
            if period_end > now:
                return sub
            if sub["cancel_at_period_end"]:
                sub = self._set(sub["id"], status="CANCELLED", cancelled_at=_iso(period_end))
                self._enqueue_event("subscription.cancelled", _event_data(sub))
                return sub
            event = "subscription.trial_ended" if status == "TRIALING" else "subscription.renewed"
            sub = self._start_period(sub, period_end, event)
        return sub

    def _start_period(self, sub: Record, start: datetime, event: str) -> Record:
        sub = self._set(
            sub["id"],
            status="ACTIVE",
            paused_at=None,
            resumes_at=None,
            current_period_start=_iso(start),
            current_period_end=_iso(add_interval(start, sub["interval"])),
        )
        self._enqueue_event(event, _event_data(sub))
        return sub

    def _transition(self, sub_id: str, allowed: tuple[str, ...], action: str) -> Record:
        sub = self._advance(self._subscription_row(sub_id))
        if sub["status"] not in allowed:
            raise ApiError(
                409,
                "INVALID_SUBSCRIPTION_TRANSITION",
                f"Cannot {action} subscription {sub_id}: it is {sub['status']} ({action} needs {' or '.join(allowed)})",
                extra={"status": sub["status"]},
            )
        return sub

    def update_subscription(self, sub_id: str, changes: Record) -> Record:
        """Change name, description, price, metadata, included usage or overage unit (409 once ended)."""
        with self._write():
            self._transition(sub_id, ("ACTIVE", "TRIALING", "PAUSED", "PAST_DUE"), "update")
            if "metadata" in changes:
                changes["metadata"] = _dump(changes["metadata"])
            if "price_usdc" in changes:
                changes["price_usdc"] = str(changes["price_usdc"])
            return self._set(sub_id, **changes)

    def cancel_subscription(self, sub_id: str, *, immediate: bool) -> Record:
        """Cancel now (CANCELLED) or at the period end (``cancel_at_period_end``, status unchanged)."""
        with self._write():
            if immediate:
                self._transition(sub_id, ("ACTIVE", "TRIALING", "PAUSED", "PAST_DUE"), "cancel")
                sub = self._set(sub_id, status="CANCELLED", cancelled_at=self._now_iso(), cancel_at_period_end=0)
                self._enqueue_event("subscription.cancelled", _event_data(sub))
                return sub
            sub = self._transition(sub_id, ("ACTIVE", "TRIALING", "PAST_DUE"), "cancel at period end")
            return self._set(sub_id, cancel_at_period_end=1) if not sub["cancel_at_period_end"] else sub

    def pause_subscription(self, sub_id: str, *, resumes_at: datetime | None) -> Record:
        """Pause an ACTIVE subscription, optionally until `resumes_at` (must be in the future)."""
        with self._write():
            self._transition(sub_id, ("ACTIVE",), "pause")
            if resumes_at is not None and resumes_at <= self._now():
                raise ApiError(
                    422,
                    "VALIDATION_ERROR",
                    "Validation failed: resumeDate: must be in the future",
                    details=[{"path": "resumeDate", "message": "must be in the future"}],
                )
            sub = self._set(
                sub_id,
                status="PAUSED",
                paused_at=self._now_iso(),
                resumes_at=None if resumes_at is None else _iso(resumes_at),
            )
            self._enqueue_event("subscription.paused", _event_data(sub))
            return sub

    def resume_subscription(self, sub_id: str) -> Record:
        """Resume a PAUSED subscription: ACTIVE with a new period starting now."""
        with self._write():
            sub = self._transition(sub_id, ("PAUSED",), "resume")
            return self._start_period(sub, self._now(), "subscription.resumed")


def _event_data(sub: Record) -> Record:
    return {
        "subscriptionId": sub["id"],
        "businessId": SANDBOX_BUSINESS_ID,
        "customerId": sub["customer_id"],
        "name": sub["name"],
        "status": sub["status"],
        "interval": sub["interval"],
        "priceUsdc": str(Decimal(sub["price_usdc"]).quantize(Decimal("0.000001"))),
        "currentPeriodStart": sub["current_period_start"],
        "currentPeriodEnd": sub["current_period_end"],
        "cancelAtPeriodEnd": bool(sub["cancel_at_period_end"]),
    }
