"""Checkout sessions that top up a customer's balance (`CheckoutMixin`)."""

from __future__ import annotations

from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import MICROS_PER_USDC, Record, _dump, iso_at, iso_now, new_id
from drip_mcp.sandbox.store.customers import CustomersMixin

__all__ = ["CheckoutMixin"]


class CheckoutMixin(CustomersMixin):
    """Checkout sessions: open, look up, complete (credits the balance once)."""

    SCHEMA = """
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
