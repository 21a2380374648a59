"""Per-customer pricing contracts and their price overrides (`ContractsMixin`).

A contract is in force when its status is ACTIVE, its ``startDate`` has come
and its ``endDate`` (if any) has not passed. An override ``{unitType,
unitPriceUsd}`` on a contract in force replaces the pricing plan's unit price
for that customer's charges of that meter (``/usage`` and ``/usage/async``,
and estimates for that customer); with several contracts in force, the newest
one's override wins. An override also prices a meter that has no plan. The
other terms (minimum/maximum, discount, prepaid, included units) are stored
and shown but not applied to charges. DELETE cancels (status CANCELLED).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, _dump, iso_now, new_id
from drip_mcp.sandbox.store.billing import BillingMixin

__all__ = ["CONTRACT_STATUSES", "ContractsMixin"]

CONTRACT_STATUSES = ("ACTIVE", "EXPIRED", "CANCELLED")
# Updatable columns and how a value is stored.
_TERMS = {
    "name": "name",
    "startDate": "start_date",
    "endDate": "end_date",
    "status": "status",
    "minimumUsdc": "minimum_usdc",
    "maximumUsdc": "maximum_usdc",
    "discountPct": "discount_pct",
    "prepaidAmountUsdc": "prepaid_amount_usdc",
    "prepaidRollover": "prepaid_rollover",
    "includedUnits": "included_units",
    "metadata": "metadata",
}


class ContractsMixin(BillingMixin):
    """Contracts (create, list, get, update, cancel) and price overrides used by the charge path."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS contracts (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        name TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'ACTIVE',
        start_date TEXT NOT NULL,
        end_date TEXT,
        minimum_usdc TEXT,
        maximum_usdc TEXT,
        discount_pct REAL,
        prepaid_amount_usdc TEXT,
        prepaid_rollover INTEGER NOT NULL DEFAULT 0,
        included_units TEXT,
        metadata TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS contracts_customer ON contracts (customer_id);
    CREATE TABLE IF NOT EXISTS contract_overrides (
        contract_id TEXT NOT NULL REFERENCES contracts (id),
        unit_type TEXT NOT NULL,
        unit_price TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (contract_id, unit_type)
    );
    """

    def _contract_row(self, contract_id: str) -> Record:
        row = self._one("SELECT * FROM contracts WHERE id = ?", (contract_id,))
        if row is None:
            raise not_found("Contract", contract_id)
        row["overrides"] = self._all(
            "SELECT unit_type, unit_price FROM contract_overrides WHERE contract_id = ? ORDER BY rowid", (contract_id,)
        )
        return row

    def contract(self, contract_id: str) -> Record:
        """The contract with its overrides (404 if unknown)."""
        return self._contract_row(contract_id)

    def create_contract(self, customer_id: str, terms: dict[str, Any]) -> Record:
        """Create an ACTIVE contract for an existing customer; emits ``contract.created``."""
        contract_id, now = new_id(), iso_now()
        with self._write() as conn:
            self._customer_row(customer_id)
            conn.execute(
                "INSERT INTO contracts (id, customer_id, name, start_date, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (contract_id, customer_id, terms["name"], terms["startDate"], now, now),
            )
            self._set_terms(contract_id, {k: v for k, v in terms.items() if k not in ("name", "startDate")})
            contract = self._contract_row(contract_id)
            self._enqueue_event("contract.created", _event_data(contract))
        return contract

    def _set_terms(self, contract_id: str, terms: dict[str, Any]) -> None:
        for field, value in terms.items():
            column = _TERMS[field]
            if field in ("includedUnits", "metadata"):
                value = _dump(value)
            elif field == "prepaidRollover":
                value = int(value)
            elif isinstance(value, Decimal):
                value = str(value) if field != "discountPct" else float(value)
            self._conn.execute(f"UPDATE contracts SET {column} = ? WHERE id = ?", (value, contract_id))  # noqa: S608

    def list_contracts(self, *, customer_id: str | None, status: str | None) -> list[Record]:
        """Contracts, newest first, optionally of one customer or status."""
        rows = self._conn.execute(
            "SELECT id FROM contracts WHERE (?1 IS NULL OR customer_id = ?1) AND (?2 IS NULL OR status = ?2)"
            " ORDER BY rowid DESC",
            (customer_id, status),
        ).fetchall()
        return [self._contract_row(row["id"]) for row in rows]

    def update_contract(self, contract_id: str, terms: dict[str, Any]) -> Record:
        """Change a contract's terms; emits ``contract.updated`` (or ``contract.cancelled``)."""
        with self._write() as conn:
            before = self._contract_row(contract_id)
            self._set_terms(contract_id, terms)
            conn.execute("UPDATE contracts SET updated_at = ? WHERE id = ?", (iso_now(), contract_id))
            contract = self._contract_row(contract_id)
            cancelled = contract["status"] == "CANCELLED" and before["status"] != "CANCELLED"
            self._enqueue_event("contract.cancelled" if cancelled else "contract.updated", _event_data(contract))
        return contract

    def cancel_contract(self, contract_id: str) -> Record:
        """Cancel a contract (idempotent); emits ``contract.cancelled`` the first time."""
        if self._contract_row(contract_id)["status"] == "CANCELLED":
            return self._contract_row(contract_id)
        return self.update_contract(contract_id, {"status": "CANCELLED"})

    def set_contract_override(self, contract_id: str, unit_type: str, unit_price: Decimal) -> Record:
        """Add or replace the contract's price for `unit_type` (409 ``CONTRACT_NOT_ACTIVE`` if cancelled/expired)."""
        with self._write() as conn:
            contract = self._contract_row(contract_id)
            if contract["status"] != "ACTIVE":
                raise ApiError(
                    409,
                    "CONTRACT_NOT_ACTIVE",
                    f"Contract {contract_id} is {contract['status']}; overrides need an ACTIVE contract",
                )
            conn.execute(
                "INSERT INTO contract_overrides (contract_id, unit_type, unit_price, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (contract_id, unit_type) DO UPDATE SET unit_price = excluded.unit_price",
                (contract_id, unit_type, str(unit_price), iso_now()),
            )
            conn.execute("UPDATE contracts SET updated_at = ? WHERE id = ?", (iso_now(), contract_id))
            self._enqueue_event("contract.updated", _event_data(self._contract_row(contract_id)))
        return {"contract_id": contract_id, "unit_type": unit_type, "unit_price": str(unit_price)}

    def remove_contract_override(self, contract_id: str, unit_type: str) -> None:
        """Remove the contract's price for `unit_type` (404 if it has none)."""
        with self._write() as conn:
            self._contract_row(contract_id)
            deleted = conn.execute(
                "DELETE FROM contract_overrides WHERE contract_id = ? AND unit_type = ?", (contract_id, unit_type)
            )
            if deleted.rowcount == 0:
                raise not_found("Contract override", unit_type)
            self._enqueue_event("contract.updated", _event_data(self._contract_row(contract_id)))

    def contract_prices(self, customer_id: str) -> dict[str, Decimal]:
        """Override price per unit type from the customer's contracts in force (newest contract wins)."""
        now = iso_now()
        rows = self._conn.execute(
            "SELECT o.unit_type, o.unit_price FROM contract_overrides o JOIN contracts c ON c.id = o.contract_id"
            " WHERE c.customer_id = ? AND c.status = 'ACTIVE' AND c.start_date <= ?"
            " AND (c.end_date IS NULL OR c.end_date > ?) ORDER BY c.rowid",
            (customer_id, now, now),
        ).fetchall()
        return {row["unit_type"]: Decimal(row["unit_price"]) for row in rows}

    def _unit_price(self, customer_id: str, usage_type: str) -> Decimal | None:
        override = self.contract_prices(customer_id).get(usage_type)
        return override if override is not None else super()._unit_price(customer_id, usage_type)


def _event_data(contract: Record) -> Record:
    return {
        "contractId": contract["id"],
        "customerId": contract["customer_id"],
        "name": contract["name"],
        "status": contract["status"],
        "overrides": [{"unitType": o["unit_type"], "unitPriceUsdc": o["unit_price"]} for o in contract["overrides"]],
        "metadata": None if contract["metadata"] is None else json.loads(contract["metadata"]),
    }
