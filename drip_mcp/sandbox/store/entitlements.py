"""Entitlement plans, their rules, customer assignments and per-period usage (`EntitlementsMixin`).

Usage is counted per (customer, featureKey, period start): a DAILY period
starts at 00:00 UTC, a MONTHLY one on the 1st at 00:00 UTC, so counts reset
when the period rolls over (by `ClockMixin.clock`). Quantities are exact
decimals; AMOUNT limits are USDC and are rounded to 6 places.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, iso_at, new_id
from drip_mcp.sandbox.store.clock import ClockMixin, add_months
from drip_mcp.sandbox.store.customers import CustomersMixin

__all__ = ["EntitlementsMixin", "period_bounds"]


def period_bounds(now: datetime, period: str) -> tuple[datetime, datetime]:
    """The start and end (exclusive) of the DAILY or MONTHLY period containing `now` (UTC)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAILY":
        return day, day + timedelta(days=1)
    month = day.replace(day=1)
    return month, add_months(month, 1)


class EntitlementsMixin(ClockMixin, CustomersMixin):
    """Plans with rules, one plan per customer (with overrides), and allowance checks that consume."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS entitlement_plans (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        description TEXT,
        is_default INTEGER NOT NULL DEFAULT 0,
        is_active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS entitlement_rules (
        id TEXT PRIMARY KEY,
        plan_id TEXT NOT NULL REFERENCES entitlement_plans (id),
        feature_key TEXT NOT NULL,
        limit_type TEXT NOT NULL,
        period TEXT NOT NULL,
        limit_value TEXT NOT NULL,
        unlimited INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (plan_id, feature_key)
    );
    CREATE TABLE IF NOT EXISTS customer_entitlements (
        customer_id TEXT PRIMARY KEY REFERENCES customers (id),
        plan_id TEXT NOT NULL REFERENCES entitlement_plans (id),
        overrides TEXT NOT NULL,
        assigned_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS entitlement_usage (
        customer_id TEXT NOT NULL,
        feature_key TEXT NOT NULL,
        period_start TEXT NOT NULL,
        used TEXT NOT NULL,
        PRIMARY KEY (customer_id, feature_key, period_start)
    );
    """

    # -- plans ------------------------------------------------------------------------

    def create_entitlement_plan(self, fields: Record) -> Record:
        """Create a plan; 409 ``DUPLICATE_ENTITLEMENT_PLAN`` if the slug exists."""
        with self._write() as conn:
            existing = self._one("SELECT id FROM entitlement_plans WHERE slug = ?", (fields["slug"],))
            if existing is not None:
                raise ApiError(
                    409,
                    "DUPLICATE_ENTITLEMENT_PLAN",
                    f"An entitlement plan with slug '{fields['slug']}' already exists",
                    extra={"existingPlanId": existing["id"]},
                )
            plan_id, now = new_id(), self._now_iso()
            if fields["is_default"]:
                conn.execute("UPDATE entitlement_plans SET is_default = 0, updated_at = ?", (now,))
            conn.execute(
                "INSERT INTO entitlement_plans (id, name, slug, description, is_default, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (plan_id, fields["name"], fields["slug"], fields["description"], int(fields["is_default"]), now, now),
            )
            plan = self.entitlement_plan(plan_id)
            self._enqueue_event("entitlement_plan.created", _plan_data(plan))
            return plan

    def entitlement_plan(self, plan_id: str) -> Record:
        """The plan (404 if unknown)."""
        row = self._one("SELECT * FROM entitlement_plans WHERE id = ?", (plan_id,))
        if row is None:
            raise not_found("Entitlement plan", plan_id)
        return row

    def list_entitlement_plans(self) -> list[Record]:
        """Every plan, oldest first (deactivated ones included, with ``is_active`` 0)."""
        return self._all("SELECT * FROM entitlement_plans ORDER BY rowid")

    def update_entitlement_plan(self, plan_id: str, changes: Record) -> Record:
        """Apply `changes` (name, slug, description, is_default, is_active); 409 on a taken slug."""
        with self._write() as conn:
            self.entitlement_plan(plan_id)
            slug = changes.get("slug")
            if slug is not None:
                taken = self._one("SELECT id FROM entitlement_plans WHERE slug = ? AND id != ?", (slug, plan_id))
                if taken is not None:
                    raise ApiError(
                        409, "DUPLICATE_ENTITLEMENT_PLAN", f"An entitlement plan with slug '{slug}' already exists"
                    )
            now = self._now_iso()
            if changes.get("is_default"):
                conn.execute("UPDATE entitlement_plans SET is_default = 0, updated_at = ?", (now,))
            for column in ("name", "slug", "description", "is_default", "is_active"):
                if column in changes:
                    value = changes[column]
                    conn.execute(
                        f"UPDATE entitlement_plans SET {column} = ? WHERE id = ?",  # noqa: S608 (fixed column names)
                        (int(value) if isinstance(value, bool) else value, plan_id),
                    )
            conn.execute("UPDATE entitlement_plans SET updated_at = ? WHERE id = ?", (now, plan_id))
            plan = self.entitlement_plan(plan_id)
            self._enqueue_event("entitlement_plan.updated", _plan_data(plan))
            return plan

    def delete_entitlement_plan(self, plan_id: str) -> None:
        """Deactivate a plan (soft delete): it stays readable, and no longer gates anyone."""
        with self._write() as conn:
            self.entitlement_plan(plan_id)
            conn.execute(
                "UPDATE entitlement_plans SET is_active = 0, is_default = 0, updated_at = ? WHERE id = ?",
                (self._now_iso(), plan_id),
            )
            self._enqueue_event("entitlement_plan.deleted", _plan_data(self.entitlement_plan(plan_id)))

    # -- rules ------------------------------------------------------------------------

    def add_entitlement_rule(self, plan_id: str, fields: Record) -> Record:
        """Add a rule; 409 ``DUPLICATE_ENTITLEMENT_RULE`` if the plan has one for the feature."""
        with self._write() as conn:
            plan = self.entitlement_plan(plan_id)
            if self._one(
                "SELECT id FROM entitlement_rules WHERE plan_id = ? AND feature_key = ?",
                (plan_id, fields["feature_key"]),
            ):
                raise ApiError(
                    409,
                    "DUPLICATE_ENTITLEMENT_RULE",
                    f"Plan {plan_id} already has a rule for featureKey '{fields['feature_key']}'",
                )
            rule_id, now = new_id(), self._now_iso()
            conn.execute(
                "INSERT INTO entitlement_rules (id, plan_id, feature_key, limit_type, period, limit_value, unlimited,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rule_id,
                    plan_id,
                    fields["feature_key"],
                    fields["limit_type"],
                    fields["period"],
                    str(fields["limit_value"]),
                    int(fields["unlimited"]),
                    now,
                    now,
                ),
            )
            self._enqueue_event("entitlement_plan.updated", _plan_data(plan))
            return self.entitlement_rule(rule_id)

    def entitlement_rule(self, rule_id: str) -> Record:
        """The rule (404 if unknown)."""
        row = self._one("SELECT * FROM entitlement_rules WHERE id = ?", (rule_id,))
        if row is None:
            raise not_found("Entitlement rule", rule_id)
        return row

    def entitlement_rules(self, plan_id: str) -> list[Record]:
        """The plan's rules, oldest first (404 if the plan is unknown)."""
        self.entitlement_plan(plan_id)
        return self._all("SELECT * FROM entitlement_rules WHERE plan_id = ? ORDER BY rowid", (plan_id,))

    def update_entitlement_rule(self, rule_id: str, changes: Record) -> Record:
        """Apply `changes` (limit_type, period, limit_value, unlimited) to a rule."""
        with self._write() as conn:
            rule = self.entitlement_rule(rule_id)
            for column in ("limit_type", "period", "limit_value", "unlimited"):
                if column in changes:
                    value = changes[column]
                    value = int(value) if isinstance(value, bool) else str(value)
                    conn.execute(
                        f"UPDATE entitlement_rules SET {column} = ? WHERE id = ?",  # noqa: S608 (fixed column names)
                        (value, rule_id),
                    )
            conn.execute("UPDATE entitlement_rules SET updated_at = ? WHERE id = ?", (self._now_iso(), rule_id))
            self._enqueue_event("entitlement_plan.updated", _plan_data(self.entitlement_plan(rule["plan_id"])))
            return self.entitlement_rule(rule_id)

    def delete_entitlement_rule(self, rule_id: str) -> None:
        """Delete a rule (404 if unknown)."""
        with self._write() as conn:
            rule = self.entitlement_rule(rule_id)
            conn.execute("DELETE FROM entitlement_rules WHERE id = ?", (rule_id,))
            self._enqueue_event("entitlement_plan.updated", _plan_data(self.entitlement_plan(rule["plan_id"])))

    # -- customers --------------------------------------------------------------------

    def assign_entitlement(self, customer_id: str, plan_id: str, overrides: dict[str, Any]) -> Record:
        """Assign an active plan to a customer (replacing any earlier one); usage counts are kept."""
        with self._write() as conn:
            self._customer_row(customer_id)
            plan = self.entitlement_plan(plan_id)
            if not plan["is_active"]:
                raise ApiError(409, "ENTITLEMENT_PLAN_INACTIVE", f"Entitlement plan {plan_id} has been deactivated")
            now = self._now_iso()
            conn.execute(
                "INSERT INTO customer_entitlements (customer_id, plan_id, overrides, assigned_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (customer_id) DO UPDATE SET plan_id = excluded.plan_id,"
                " overrides = excluded.overrides, assigned_at = excluded.assigned_at",
                (customer_id, plan_id, json.dumps(overrides), now),
            )
            self._enqueue_event(
                "customer.entitlement.assigned",
                {"customerId": customer_id, "planId": plan_id, "planSlug": plan["slug"], "overrides": overrides},
            )
            entitlement = self.customer_entitlement(customer_id)
            assert entitlement is not None
            return entitlement

    def customer_entitlement(self, customer_id: str) -> Record | None:
        """The customer's effective plan (assigned, else the active default) with rules, or None.

        Each rule carries its effective limit (after overrides) and its usage
        in the current period: ``used``, ``period_start``, ``period_end``.
        """
        self._customer_row(customer_id)
        assigned = self._one(
            "SELECT ce.overrides, p.* FROM customer_entitlements ce JOIN entitlement_plans p ON p.id = ce.plan_id"
            " WHERE ce.customer_id = ? AND p.is_active = 1",
            (customer_id,),
        )
        if assigned is None:
            assigned = self._one(
                "SELECT '{}' AS overrides, * FROM entitlement_plans WHERE is_default = 1 AND is_active = 1 LIMIT 1"
            )
        if assigned is None:
            return None
        overrides = json.loads(assigned["overrides"])
        now = self._now()
        rules = []
        for rule in self._all("SELECT * FROM entitlement_rules WHERE plan_id = ? ORDER BY rowid", (assigned["id"],)):
            rules.append(self._effective_rule(customer_id, rule, overrides.get(rule["feature_key"]), now))
        return {"plan": assigned, "overrides": overrides, "rules": rules}

    def _effective_rule(self, customer_id: str, rule: Record, override: Any, now: datetime) -> Record:
        effective = dict(rule)
        if isinstance(override, dict):
            if override.get("limitValue") is not None:
                effective["limit_value"] = str(override["limitValue"])
            if override.get("unlimited") is not None:
                effective["unlimited"] = int(bool(override["unlimited"]))
        elif override is not None:
            effective["limit_value"] = str(override)
        start, end = period_bounds(now, rule["period"])
        used = self._scalar(
            "SELECT COALESCE((SELECT used FROM entitlement_usage WHERE customer_id = ? AND feature_key = ?"
            " AND period_start = ?), '0')",
            (customer_id, rule["feature_key"], iso_at(start.timestamp())),
        )
        effective.update(used=Decimal(used), period_start=start, period_end=end)
        return effective

    def check_entitlement(self, customer_id: str, feature_key: str, quantity: Decimal) -> Record:
        """Check (and, when allowed, consume) `quantity` of a feature's allowance in the current period.

        Returns ``allowed``, ``limit``/``remaining`` (Decimal, None when
        unlimited), ``unlimited``, ``period``, ``period_end`` and ``reason``.
        """
        with self._write() as conn:
            entitlement = self.customer_entitlement(customer_id)
            now = self._now()
            if entitlement is None:
                _, end = period_bounds(now, "MONTHLY")
                return _check(True, None, None, "MONTHLY", end, None)
            rule = next((r for r in entitlement["rules"] if r["feature_key"] == feature_key), None)
            if rule is None:
                _, end = period_bounds(now, "MONTHLY")
                missing = f"Feature '{feature_key}' is not included in plan '{entitlement['plan']['slug']}'"
                return _check(False, Decimal(0), Decimal(0), "MONTHLY", end, missing)
            unlimited = bool(rule["unlimited"])
            limit = Decimal(rule["limit_value"])
            used: Decimal = rule["used"]
            allowed = unlimited or used + quantity <= limit
            if allowed:
                used += quantity
                conn.execute(
                    "INSERT INTO entitlement_usage (customer_id, feature_key, period_start, used) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (customer_id, feature_key, period_start) DO UPDATE SET used = excluded.used",
                    (customer_id, feature_key, iso_at(rule["period_start"].timestamp()), str(used)),
                )
            if unlimited:
                return _check(True, None, None, rule["period"], rule["period_end"], None)
            remaining = max(limit - used, Decimal(0))
            reason: str | None = None
            if not allowed:
                unit = "USDC" if rule["limit_type"] == "AMOUNT" else "units"
                reason = (
                    f"{rule['period'].capitalize()} limit of {limit} {unit} for '{feature_key}' exceeded:"
                    f" {used} used, {quantity} requested"
                )
            return _check(allowed, limit, remaining, rule["period"], rule["period_end"], reason)


def _check(
    allowed: bool,
    limit: Decimal | None,
    remaining: Decimal | None,
    period: str,
    period_end: datetime,
    reason: str | None,
) -> Record:
    return {
        "allowed": allowed,
        "limit": limit,
        "remaining": remaining,
        "unlimited": limit is None,
        "period": period,
        "period_end": period_end,
        "reason": reason,
    }


def _plan_data(plan: Record) -> Record:
    return {"planId": plan["id"], "name": plan["name"], "slug": plan["slug"], "isActive": bool(plan["is_active"])}
