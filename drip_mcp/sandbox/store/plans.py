"""Pricing-plan lifecycle beyond create/list (`PlansMixin`): get, update, soft delete, versions.

Every price change writes a version row: the first change also records
version 1 (the price the plan was created with), so a plan's history is
``pricing_plan_versions`` ordered by ``version``; a plan never changed has one
synthetic version. Deleting sets ``isActive`` false (charges keep their
amounts). Re-activating, or activating a plan while another active plan has
the unit type, is 409 ``DUPLICATE_PRICING_PLAN`` with ``existingPlanId``.
Changes emit ``pricing_plan.updated``.
"""

from __future__ import annotations

from decimal import Decimal

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, iso_now, new_id
from drip_mcp.sandbox.store.billing import BillingMixin

__all__ = ["PlansMixin"]


class PlansMixin(BillingMixin):
    """Get, update (versioned), soft-delete and look up pricing plans."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS pricing_plan_versions (
        id TEXT PRIMARY KEY,
        plan_id TEXT NOT NULL REFERENCES pricing_plans (id),
        version INTEGER NOT NULL,
        unit_price TEXT NOT NULL,
        effective_from TEXT NOT NULL,
        effective_to TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (plan_id, version)
    );
    """

    def pricing_plan(self, plan_id: str) -> Record:
        """The plan `plan_id` with its current ``version`` (404 if unknown)."""
        row = self._one("SELECT * FROM pricing_plans WHERE id = ?", (plan_id,))
        if row is None:
            raise not_found("Pricing plan", plan_id)
        row["version"] = int(
            self._scalar("SELECT COALESCE(MAX(version), 1) FROM pricing_plan_versions WHERE plan_id = ?", (plan_id,))
        )
        return row

    def active_plan_for(self, unit_type: str) -> Record:
        """The active plan of `unit_type` (404 when there is none)."""
        row = self._one("SELECT id FROM pricing_plans WHERE unit_type = ? AND is_active = 1", (unit_type,))
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"No active pricing plan for unitType '{unit_type}'")
        return self.pricing_plan(row["id"])

    def plan_versions(self, plan_id: str) -> list[Record]:
        """The plan's price history, oldest first."""
        plan = self.pricing_plan(plan_id)
        rows = self._all("SELECT * FROM pricing_plan_versions WHERE plan_id = ? ORDER BY version", (plan_id,))
        if rows:
            return rows
        return [
            {
                "id": plan_id,
                "plan_id": plan_id,
                "version": 1,
                "unit_price": plan["unit_price"],
                "effective_from": plan["created_at"],
                "effective_to": None,
                "created_at": plan["created_at"],
            }
        ]

    def update_pricing_plan(
        self, plan_id: str, *, name: str | None, unit_price: Decimal | None, is_active: bool | None
    ) -> Record:
        """Rename, re-price (a new version) or (de)activate a plan."""
        with self._write() as conn:
            plan = self.pricing_plan(plan_id)
            now = iso_now()
            if is_active and not plan["is_active"]:
                self._refuse_second_active(plan["unit_type"])
            if unit_price is not None and Decimal(plan["unit_price"]) != unit_price:
                self._new_version(plan, unit_price, now)
            conn.execute(
                "UPDATE pricing_plans SET name = COALESCE(?, name), unit_price = COALESCE(?, unit_price),"
                " is_active = COALESCE(?, is_active), updated_at = ? WHERE id = ?",
                (name, None if unit_price is None else str(unit_price), _flag(is_active), now, plan_id),
            )
            updated = self.pricing_plan(plan_id)
            self._enqueue_event("pricing_plan.updated", _event_data(updated, previous_price=plan["unit_price"]))
        return updated

    def delete_pricing_plan(self, plan_id: str) -> Record:
        """Deactivate a plan (soft delete)."""
        return self.update_pricing_plan(plan_id, name=None, unit_price=None, is_active=False)

    def _refuse_second_active(self, unit_type: str) -> None:
        existing = self._one("SELECT id FROM pricing_plans WHERE unit_type = ? AND is_active = 1", (unit_type,))
        if existing is not None:
            raise ApiError(
                409,
                "DUPLICATE_PRICING_PLAN",
                f"An active pricing plan for unitType '{unit_type}' already exists",
                extra={"existingPlanId": existing["id"]},
            )

    def _new_version(self, plan: Record, unit_price: Decimal, now: str) -> None:
        current = self._one(
            "SELECT * FROM pricing_plan_versions WHERE plan_id = ? ORDER BY version DESC LIMIT 1", (plan["id"],)
        )
        if current is None:
            self._conn.execute(
                "INSERT INTO pricing_plan_versions (id, plan_id, version, unit_price, effective_from, effective_to,"
                " created_at) VALUES (?, ?, 1, ?, ?, ?, ?)",
                (new_id(), plan["id"], plan["unit_price"], plan["created_at"], now, plan["created_at"]),
            )
            version = 2
        else:
            self._conn.execute("UPDATE pricing_plan_versions SET effective_to = ? WHERE id = ?", (now, current["id"]))
            version = current["version"] + 1
        self._conn.execute(
            "INSERT INTO pricing_plan_versions (id, plan_id, version, unit_price, effective_from, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (new_id(), plan["id"], version, str(unit_price), now, now),
        )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _event_data(plan: Record, *, previous_price: str) -> Record:
    return {
        "pricingPlanId": plan["id"],
        "unitType": plan["unit_type"],
        "unitPriceUsd": plan["unit_price"],
        "previousUnitPriceUsd": previous_price,
        "isActive": bool(plan["is_active"]),
        "version": plan["version"],
    }
