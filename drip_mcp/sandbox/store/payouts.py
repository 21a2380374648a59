"""Withdrawals of the business's earnings and customer portal sessions (`PayoutsMixin`).

The business's withdrawable balance is what it has earned (CONFIRMED charges;
refunded ones no longer count) minus withdrawals not CANCELLED or FAILED. A
withdrawal is idempotent by ``idempotency_key`` (a replay returns the original),
pays a 1 % (100 bps) ACH off-ramp fee rounded half-up to the micro-USDC, and
stays PENDING (the sandbox has no bank) until it is cancelled. Portal sessions
are opaque tokens with an expiry, revocable once.
"""

from __future__ import annotations

import secrets

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, from_micros, iso_at, iso_now, new_id
from drip_mcp.sandbox.store.settlement import SettlementMixin

__all__ = ["WITHDRAWAL_FEE_BPS", "PayoutsMixin", "withdrawal_fee"]

WITHDRAWAL_FEE_BPS = 100


def withdrawal_fee(amount_micros: int) -> int:
    """The off-ramp fee for `amount_micros` (half-up)."""
    return (amount_micros * WITHDRAWAL_FEE_BPS + 5_000) // 10_000


class PayoutsMixin(SettlementMixin):
    """Withdrawals (create, list, cancel) and portal sessions (create, revoke)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS withdrawals (
        id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        amount_micros INTEGER NOT NULL,
        fee_micros INTEGER NOT NULL,
        status TEXT NOT NULL,
        bank_description TEXT,
        created_at TEXT NOT NULL,
        completed_at TEXT,
        cancelled_at TEXT
    );
    CREATE TABLE IF NOT EXISTS portal_sessions (
        id TEXT PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        created_at TEXT NOT NULL
    );
    """

    def withdrawable_micros(self) -> int:
        """Earnings not yet withdrawn (or held by a pending withdrawal)."""
        held = int(
            self._scalar(
                "SELECT COALESCE(SUM(amount_micros), 0) FROM withdrawals WHERE status NOT IN ('CANCELLED', 'FAILED')"
            )
        )
        return self.earned_micros() - held

    def create_withdrawal(
        self, *, amount_micros: int, idempotency_key: str, bank_description: str | None
    ) -> tuple[Record, bool]:
        """Withdraw earnings; returns (withdrawal, is_replay). 400 ``INSUFFICIENT_BALANCE`` when short."""
        with self._write() as conn:
            existing = self._one("SELECT * FROM withdrawals WHERE idempotency_key = ?", (idempotency_key,))
            if existing is not None:
                return existing, True
            available = self.withdrawable_micros()
            if amount_micros > available:
                raise ApiError(
                    400,
                    "INSUFFICIENT_BALANCE",
                    f"Withdrawal of {from_micros(amount_micros)} USDC exceeds the available "
                    f"{from_micros(available)} USDC",
                    extra={"availableUsdc": str(from_micros(available))},
                )
            withdrawal_id = new_id()
            conn.execute(
                "INSERT INTO withdrawals (id, idempotency_key, amount_micros, fee_micros, status, bank_description,"
                " created_at) VALUES (?, ?, ?, ?, 'PENDING', ?, ?)",
                (
                    withdrawal_id,
                    idempotency_key,
                    amount_micros,
                    withdrawal_fee(amount_micros),
                    bank_description,
                    iso_now(),
                ),
            )
            withdrawal = self.withdrawal(withdrawal_id)
            self._enqueue_event("withdrawal.created", _withdrawal_event(withdrawal))
        return withdrawal, False

    def withdrawal(self, withdrawal_id: str) -> Record:
        """One withdrawal (404 if unknown)."""
        row = self._one("SELECT * FROM withdrawals WHERE id = ?", (withdrawal_id,))
        if row is None:
            raise not_found("Withdrawal", withdrawal_id)
        return row

    def list_withdrawals(self, *, status: str | None, limit: int, offset: int) -> tuple[list[Record], int]:
        """Withdrawals newest first, and how many match in all."""
        rows = self._all(
            "SELECT * FROM withdrawals WHERE (?1 IS NULL OR status = ?1) ORDER BY rowid DESC LIMIT ?2 OFFSET ?3",
            (status, limit, offset),
        )
        total = int(self._scalar("SELECT COUNT(*) FROM withdrawals WHERE (?1 IS NULL OR status = ?1)", (status,)))
        return rows, total

    def cancel_withdrawal(self, withdrawal_id: str) -> Record:
        """Cancel a PENDING withdrawal (409 ``WITHDRAWAL_NOT_CANCELLABLE`` otherwise)."""
        with self._write() as conn:
            withdrawal = self.withdrawal(withdrawal_id)
            if withdrawal["status"] != "PENDING":
                raise ApiError(
                    409,
                    "WITHDRAWAL_NOT_CANCELLABLE",
                    f"Withdrawal {withdrawal_id} is {withdrawal['status']}; only PENDING withdrawals can be cancelled",
                )
            conn.execute(
                "UPDATE withdrawals SET status = 'CANCELLED', cancelled_at = ? WHERE id = ?", (iso_now(), withdrawal_id)
            )
            cancelled = self.withdrawal(withdrawal_id)
            self._enqueue_event("withdrawal.failed", {**_withdrawal_event(cancelled), "reason": "CANCELLED"})
        return cancelled

    def create_portal_session(self, customer_ref: str, *, ttl_s: int) -> Record:
        """A portal session for a customer given by id or external id (404 if neither matches)."""
        with self._write() as conn:
            customer = self._one(
                "SELECT * FROM customers WHERE id = ? OR external_customer_id = ? ORDER BY id = ? DESC LIMIT 1",
                (customer_ref, customer_ref, customer_ref),
            )
            if customer is None:
                raise not_found("Customer", customer_ref)
            session_id, now = new_id(), self.clock()
            conn.execute(
                "INSERT INTO portal_sessions (id, token, customer_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, secrets.token_urlsafe(32), customer["id"], iso_at(now + ttl_s), iso_at(now)),
            )
        return dict(self._one("SELECT * FROM portal_sessions WHERE id = ?", (session_id,)) or {})

    def revoke_portal_session(self, session_id: str) -> Record:
        """Revoke a session (404 if unknown, 409 ``PORTAL_SESSION_REVOKED`` if already revoked)."""
        with self._write() as conn:
            row = self._one("SELECT * FROM portal_sessions WHERE id = ?", (session_id,))
            if row is None:
                raise not_found("Portal session", session_id)
            if row["revoked_at"] is not None:
                raise ApiError(409, "PORTAL_SESSION_REVOKED", f"Portal session {session_id} is already revoked")
            conn.execute("UPDATE portal_sessions SET revoked_at = ? WHERE id = ?", (iso_now(), session_id))
        return dict(self._one("SELECT * FROM portal_sessions WHERE id = ?", (session_id,)) or {})


def _withdrawal_event(withdrawal: Record) -> Record:
    return {
        "withdrawalId": withdrawal["id"],
        "status": withdrawal["status"],
        "amountUsdc": str(from_micros(withdrawal["amount_micros"])),
        "feeUsdc": str(from_micros(withdrawal["fee_micros"])),
    }
