"""Per-customer spending caps, enforced on the charge path (`CapsMixin`).

A cap is DAILY_CHARGE_LIMIT or MONTHLY_CHARGE_LIMIT (the customer's charges
summed over the current UTC day or calendar month) or SINGLE_CHARGE_LIMIT (each
charge on its own). One active cap per type and customer: setting a type again
updates its limit and ``autoBlock`` and keeps the period's usage.

Periods are measured by ``self.clock`` (epoch seconds, injectable). A cap
whose stored ``period_start`` is not the current period's start is rolled
over (usage 0, alerts re-armed) before it is used, and shown rolled over.

On each accepted charge (``/usage``, ``/usage/async`` at acceptance) the amount
is added to every active period cap. Alerts, each once per level per period:
``customer.spending.warning`` at 50/80/95 % (levels info/warning/critical),
``customer.usage_cap.reached`` at 100 %, plus ``customer.spending.blocked``
there when ``autoBlock`` (further charges will be refused) or
``customer.spending.exceeded`` when usage passes the limit without ``autoBlock``.

With ``autoBlock``, a charge that would take the period's usage *past* the
limit (or, for SINGLE_CHARGE_LIMIT, a charge larger than it) is refused with
403 ``SPENDING_CAP_EXCEEDED``; landing exactly on the limit is allowed. The
refusal emits ``customer.spending.blocked`` if it was not sent this period.
Refunds do not give cap headroom back; a failed async charge does.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, from_micros, iso_at, iso_now, new_id
from drip_mcp.sandbox.store.billing import BillingMixin

__all__ = ["CAP_TYPES", "CapsMixin"]

CAP_TYPES = ("DAILY_CHARGE_LIMIT", "MONTHLY_CHARGE_LIMIT", "SINGLE_CHARGE_LIMIT")
_WARNINGS = ((50, "info"), (80, "warning"), (95, "critical"))


def period_start(cap_type: str, now: float, created_at: str) -> str:
    """The start of the cap's current period (a SINGLE_CHARGE_LIMIT cap has one period: its life)."""
    moment = datetime.fromtimestamp(now, tz=timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if cap_type == "DAILY_CHARGE_LIMIT":
        return iso_at(moment.timestamp())
    if cap_type == "MONTHLY_CHARGE_LIMIT":
        return iso_at(moment.replace(day=1).timestamp())
    return created_at


class SpendingCapExceeded(ApiError):
    """A charge an auto-blocking cap refuses (403 ``SPENDING_CAP_EXCEEDED``)."""

    def __init__(self, cap: Record, amount: int) -> None:
        usage = 0 if cap["cap_type"] == "SINGLE_CHARGE_LIMIT" else cap["current_usage_micros"]
        super().__init__(
            403,
            "SPENDING_CAP_EXCEEDED",
            f"Charge of {from_micros(amount)} USDC would exceed the customer's {cap['cap_type']} of "
            f"{from_micros(cap['limit_micros'])} USDC (current usage {from_micros(usage)} USDC)",
            extra={
                "capId": cap["id"],
                "capType": cap["cap_type"],
                "limitValue": str(from_micros(cap["limit_micros"])),
                "currentUsage": str(from_micros(usage)),
                "attemptedAmountUsdc": str(from_micros(amount)),
                "periodStart": cap["period_start"],
            },
        )


class CapsMixin(BillingMixin):
    """Spending caps: set, list, remove, and their enforcement in the charge hooks."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS spending_caps (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        cap_type TEXT NOT NULL,
        limit_micros INTEGER NOT NULL,
        auto_block INTEGER NOT NULL,
        is_active INTEGER NOT NULL DEFAULT 1,
        current_usage_micros INTEGER NOT NULL DEFAULT 0,
        period_start TEXT NOT NULL,
        alerts_sent TEXT NOT NULL DEFAULT '[]',
        last_alert_level TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS spending_caps_active_type
        ON spending_caps (customer_id, cap_type) WHERE is_active = 1;
    """

    # -- reads and writes ---------------------------------------------------------------

    def _rolled(self, cap: Record) -> Record:
        """`cap` as of now: usage and alerts reset when its period has moved on."""
        start = period_start(cap["cap_type"], self.clock(), cap["created_at"])
        if start == cap["period_start"]:
            return cap
        return {**cap, "period_start": start, "current_usage_micros": 0, "alerts_sent": "[]", "last_alert_level": None}

    def _persist_roll(self, cap: Record) -> Record:
        rolled = self._rolled(cap)
        if rolled is not cap:
            self._conn.execute(
                "UPDATE spending_caps SET period_start = ?, current_usage_micros = 0, alerts_sent = '[]',"
                " last_alert_level = NULL WHERE id = ?",
                (rolled["period_start"], cap["id"]),
            )
        return rolled

    def spending_caps(self, customer_id: str) -> list[Record]:
        """The customer's active caps, rolled over to the current period (404 for an unknown customer)."""
        self._customer_row(customer_id)
        rows = self._all(
            "SELECT * FROM spending_caps WHERE customer_id = ? AND is_active = 1 ORDER BY rowid", (customer_id,)
        )
        return [self._rolled(row) for row in rows]

    def set_spending_cap(self, customer_id: str, *, cap_type: str, limit_micros: int, auto_block: bool) -> Record:
        """Create the customer's cap of `cap_type`, or update the active one's limit and autoBlock."""
        now = iso_now()
        with self._write() as conn:
            self._customer_row(customer_id)
            existing = self._one(
                "SELECT * FROM spending_caps WHERE customer_id = ? AND cap_type = ? AND is_active = 1",
                (customer_id, cap_type),
            )
            if existing is not None:
                cap_id = existing["id"]
                self._persist_roll(existing)
                conn.execute(
                    "UPDATE spending_caps SET limit_micros = ?, auto_block = ?, updated_at = ? WHERE id = ?",
                    (limit_micros, int(auto_block), now, cap_id),
                )
            else:
                cap_id = new_id()
                conn.execute(
                    "INSERT INTO spending_caps (id, customer_id, cap_type, limit_micros, auto_block, period_start,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cap_id,
                        customer_id,
                        cap_type,
                        limit_micros,
                        int(auto_block),
                        period_start(cap_type, self.clock(), now),
                        now,
                        now,
                    ),
                )
        return self._rolled(dict(self._one("SELECT * FROM spending_caps WHERE id = ?", (cap_id,)) or {}))

    def remove_spending_cap(self, customer_id: str, cap_id: str) -> None:
        """Deactivate a cap (404 if the customer has no active cap `cap_id`)."""
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE spending_caps SET is_active = 0, updated_at = ? WHERE id = ? AND customer_id = ?"
                " AND is_active = 1",
                (iso_now(), cap_id, customer_id),
            )
            if updated.rowcount == 0:
                raise not_found("Spending cap", cap_id)

    # -- the charge hooks ---------------------------------------------------------------

    def _live_caps(self, customer_id: str) -> list[Record]:
        rows = self._all("SELECT * FROM spending_caps WHERE customer_id = ? AND is_active = 1", (customer_id,))
        return [self._persist_roll(row) for row in rows]

    def _cap_refusal(self, customer: Record, amount: int) -> ApiError | None:
        for cap in self._live_caps(customer["id"]):
            if not cap["auto_block"]:
                continue
            single = cap["cap_type"] == "SINGLE_CHARGE_LIMIT"
            total = amount if single else cap["current_usage_micros"] + amount
            if total > cap["limit_micros"]:
                if not single:
                    self._alert(cap, "blocked", "customer.spending.blocked", amount=amount)
                return SpendingCapExceeded(cap, amount)
        return super()._cap_refusal(customer, amount)

    def _count_cap_usage(self, customer: Record, amount: int) -> None:
        super()._count_cap_usage(customer, amount)
        for cap in self._live_caps(customer["id"]):
            if cap["cap_type"] == "SINGLE_CHARGE_LIMIT":
                continue
            usage = cap["current_usage_micros"] + amount
            self._conn.execute("UPDATE spending_caps SET current_usage_micros = ? WHERE id = ?", (usage, cap["id"]))
            cap = {**cap, "current_usage_micros": usage}
            percent = usage * 100 / cap["limit_micros"]
            for threshold, level in _WARNINGS:
                if percent >= threshold:
                    cap = self._alert(cap, str(threshold), "customer.spending.warning", level=level)
            if percent >= 100:
                cap = self._alert(cap, "100", "customer.usage_cap.reached")
                if cap["auto_block"]:
                    cap = self._alert(cap, "blocked", "customer.spending.blocked")
                elif usage > cap["limit_micros"]:
                    cap = self._alert(cap, "exceeded", "customer.spending.exceeded")

    def _release_cap_usage(self, customer: Record, amount: int) -> None:
        super()._release_cap_usage(customer, amount)
        self._conn.execute(
            "UPDATE spending_caps SET current_usage_micros = MAX(0, current_usage_micros - ?)"
            " WHERE customer_id = ? AND is_active = 1 AND cap_type != 'SINGLE_CHARGE_LIMIT'",
            (amount, customer["id"]),
        )

    def _alert(self, cap: Record, key: str, event_type: str, **extra: Any) -> Record:
        """Emit `event_type` for `cap` unless alert `key` was already sent this period."""
        sent: list[str] = json.loads(cap["alerts_sent"])
        if key in sent:
            return cap
        sent.append(key)
        level = key if key.isdigit() else cap["last_alert_level"]
        self._conn.execute(
            "UPDATE spending_caps SET alerts_sent = ?, last_alert_level = ? WHERE id = ?",
            (json.dumps(sent), level, cap["id"]),
        )
        limit, usage = cap["limit_micros"], cap["current_usage_micros"]
        data: Record = {
            "customerId": cap["customer_id"],
            "capId": cap["id"],
            "capType": cap["cap_type"],
            "limitValue": str(from_micros(limit)),
            "currentUsage": str(from_micros(usage)),
            "percentUsed": round(usage * 100 / limit, 2),
            "periodStart": cap["period_start"],
        }
        if key.isdigit() and key != "100":
            data["threshold"] = int(key)
        for name, value in extra.items():
            data["attemptedAmountUsdc" if name == "amount" else name] = (
                str(from_micros(value)) if name == "amount" else value
            )
        self._enqueue_event(event_type, data)
        return {**cap, "alerts_sent": json.dumps(sent), "last_alert_level": level}
