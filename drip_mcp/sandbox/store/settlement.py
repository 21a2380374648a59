"""Async charges and refunds (`SettlementMixin`).

``charge_async`` accepts billable usage as a PENDING charge (idempotent by
key, priced and cap-checked at acceptance, no balance check yet) and calls
`settle_listener` after the commit; `settle_pending` settles every PENDING
charge in order: CONFIRMED (balance drawn down, ``charge.succeeded``) when the
balance covers it at that moment, else FAILED with ``failureReason``
``INSUFFICIENT_BALANCE`` (``charge.failed``; what it counted against spending
caps is given back). The settlement worker (`drip_mcp.sandbox.settle`) runs it;
tests may call it directly.

``refund_charge`` credits a CONFIRMED charge's amount back to the balance
exactly, once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store.base import Record, from_micros, iso_now
from drip_mcp.sandbox.store.billing import BillingMixin, ChargeOutcome

__all__ = ["REFUND_REASONS", "SettlementMixin"]

REFUND_REASONS = ("customer_request", "merchant_error", "fraud_reversal")


class SettlementMixin(BillingMixin):
    """Async (PENDING, settled later) charges and refunds."""

    settle_listener: Callable[[], None] | None = None

    def charge_async(self, customer_id: str | None, external_customer_id: str | None, usage: Record) -> ChargeOutcome:
        """Accept billable usage as a PENDING charge; a known idempotency key replays the original."""
        refusal: ApiError | None = None
        with self._write():
            existing = self._usage_event("async", usage["idempotency_key"])
            if existing is not None:
                return ChargeOutcome(existing, self._charge_row(existing["charge_id"]), is_duplicate=True)
            customer = self._resolve_customer(customer_id, external_customer_id)
            amount = self._price_usage(customer["id"], usage)
            refusal = self._cap_refusal(customer, amount)
            if refusal is None:
                event, charge_id = self._insert_charge("async", customer["id"], usage, amount, "PENDING")
                self._count_cap_usage(customer, amount)
        if refusal is not None:
            raise refusal
        if self.settle_listener is not None:
            self.settle_listener()
        return ChargeOutcome(event, self._charge_row(charge_id), is_duplicate=False)

    def pending_charge_ids(self, limit: int = 100) -> list[str]:
        """PENDING charges, oldest first."""
        rows = self._conn.execute(
            "SELECT id FROM charges WHERE status = 'PENDING' ORDER BY rowid LIMIT ?", (limit,)
        ).fetchall()
        return [row["id"] for row in rows]

    def settle_pending(self) -> list[str]:
        """Settle every PENDING charge (each in its own transaction); returns the ids settled."""
        settled: list[str] = []
        while batch := self.pending_charge_ids():
            for charge_id in batch:
                with self._write() as conn:
                    charge = conn.execute(
                        "SELECT * FROM charges WHERE id = ? AND status = 'PENDING'", (charge_id,)
                    ).fetchone()
                    if charge is None:
                        continue
                    customer = self._customer_row(charge["customer_id"])
                    if charge["amount_micros"] <= customer["balance_micros"]:
                        self._confirm_charge(charge_id)
                    else:
                        self._fail_charge(charge_id, customer, "INSUFFICIENT_BALANCE")
                settled.append(charge_id)
        return settled

    def _fail_charge(self, charge_id: str, customer: Record, reason: str) -> None:
        self._conn.execute("UPDATE charges SET status = 'FAILED' WHERE id = ?", (charge_id,))
        self._conn.execute(
            "INSERT INTO charge_extras (charge_id, failure_reason) VALUES (?, ?)"
            " ON CONFLICT (charge_id) DO UPDATE SET failure_reason = excluded.failure_reason",
            (charge_id, reason),
        )
        charge = self._charge_row(charge_id)
        self._release_cap_usage(customer, charge["amount_micros"])
        self._enqueue_event(
            "charge.failed",
            {
                "chargeId": charge_id,
                "customerId": charge["customer_id"],
                "usageId": charge["usage_id"],
                "usageType": charge["usage_type"],
                "quantity": charge["quantity"],
                "amountUsdc": str(from_micros(charge["amount_micros"])),
                "status": "FAILED",
                "reason": reason,
                "balanceUsdc": str(from_micros(customer["balance_micros"])),
            },
        )

    def refund_charge(self, charge_id: str, *, reason: str, note: str | None) -> Record:
        """Refund a CONFIRMED charge: credit its amount back and mark it REFUNDED (409 if not refundable)."""
        with self._write() as conn:
            charge = self._charge_row(charge_id)
            if charge["status"] == "REFUNDED":
                raise ApiError(
                    409,
                    "ALREADY_REFUNDED",
                    f"Charge {charge_id} was already refunded at {charge['refunded_at']}",
                    extra={"chargeId": charge_id, "refundedAt": charge["refunded_at"]},
                )
            if charge["status"] != "CONFIRMED":
                raise ApiError(
                    409,
                    "CHARGE_NOT_REFUNDABLE",
                    f"Only CONFIRMED charges can be refunded; charge {charge_id} is {charge['status']}",
                    extra={"chargeId": charge_id, "status": charge["status"]},
                )
            now = iso_now()
            conn.execute("UPDATE charges SET status = 'REFUNDED' WHERE id = ?", (charge_id,))
            conn.execute(
                "UPDATE customers SET balance_micros = balance_micros + ?, updated_at = ? WHERE id = ?",
                (charge["amount_micros"], now, charge["customer_id"]),
            )
            conn.execute(
                "INSERT INTO charge_extras (charge_id, refund_reason, refund_note, refund_tx_hash, refunded_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (charge_id) DO UPDATE SET refund_reason = excluded.refund_reason,"
                " refund_note = excluded.refund_note, refund_tx_hash = excluded.refund_tx_hash,"
                " refunded_at = excluded.refunded_at",
                (charge_id, reason, note, "0x" + secrets.token_hex(32), now),
            )
            refunded = self._charge_row(charge_id)
            balance = self._customer_row(charge["customer_id"])["balance_micros"]
            self._enqueue_event(
                "charge.refunded",
                {
                    "chargeId": charge_id,
                    "customerId": refunded["customer_id"],
                    "usageId": refunded["usage_id"],
                    "amountUsdc": str(from_micros(refunded["amount_micros"])),
                    "status": "REFUNDED",
                    "refundReason": reason,
                    "refundTxHash": refunded["refund_tx_hash"],
                    "refundedAt": now,
                    "balanceUsdc": str(from_micros(balance)),
                },
            )
        return refunded

    def earned_micros(self) -> int:
        """What the business has earned: CONFIRMED charges (refunded ones are given back)."""
        return int(self._scalar("SELECT COALESCE(SUM(amount_micros), 0) FROM charges WHERE status = 'CONFIRMED'"))

    def usage_event_count_since(self, since_iso: str) -> int:
        """Usage events of every kind recorded at or after `since_iso` (the quota's count)."""
        return int(self._scalar("SELECT COUNT(*) FROM usage_events WHERE created_at >= ?", (since_iso,)))
