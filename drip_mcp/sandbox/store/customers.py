"""Customers and their balances (`CustomersMixin`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, StoreBase, _dump, from_micros, iso_now, new_id

__all__ = ["CustomersMixin"]


class CustomersMixin(StoreBase):
    """Customers: create, look up, list, resolve by external id, balance."""

    SCHEMA = """
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
    """

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

    def update_customer(self, customer_id: str, changes: dict[str, Any]) -> Record:
        """Change `changes` (column -> value); 409 ``DUPLICATE_CUSTOMER`` if the external id or address is taken."""
        with self._write() as conn:
            self._customer_row(customer_id)
            for column in ("external_customer_id", "onchain_address"):
                value = changes.get(column)
                taken = (
                    value is not None
                    and conn.execute(
                        f"SELECT id FROM customers WHERE {column} = ? AND id != ?",  # noqa: S608 (fixed column names)
                        (value, customer_id),
                    ).fetchone()
                )
                if taken:
                    raise ApiError(
                        409,
                        "DUPLICATE_CUSTOMER",
                        f"Another customer already has this {_CAMEL[column]}",
                        extra={"existingCustomerId": taken["id"]},
                    )
            for column, value in changes.items():
                stored = _dump(value) if column == "metadata" else int(value) if column == "is_internal" else value
                conn.execute(f"UPDATE customers SET {column} = ? WHERE id = ?", (stored, customer_id))  # noqa: S608
            conn.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (iso_now(), customer_id))
        return self._customer_row(customer_id)

    def provision_customer(self, customer_id: str, address: str) -> tuple[Record, bool]:
        """Give the customer its (deterministic sandbox) smart-account `address`; returns (row, already_deployed)."""
        with self._write() as conn:
            row = self._customer_row(customer_id)
            if row["onchain_address"] is not None:
                return row, True
            conn.execute(
                "UPDATE customers SET onchain_address = ?, updated_at = ? WHERE id = ?",
                (address, iso_now(), customer_id),
            )
        return self._customer_row(customer_id), False

    def sync_balance(self, customer_id: str) -> Record:
        """Re-read the balance (the sandbox ledger is its own chain, so it never changes here)."""
        with self._write() as conn:
            self._customer_row(customer_id)
            conn.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (iso_now(), customer_id))
        return self._customer_row(customer_id)

    def balance(self, customer_id: str) -> Decimal:
        """The customer's balance in USDC."""
        return from_micros(self._customer_row(customer_id)["balance_micros"])


_CAMEL = {"external_customer_id": "externalCustomerId", "onchain_address": "onchainAddress"}


def _public_customer(customer: Record) -> Record:
    return {
        "externalCustomerId": customer["external_customer_id"],
        "onchainAddress": customer["onchain_address"],
        "isInternal": bool(customer["is_internal"]),
    }
