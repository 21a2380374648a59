"""Webhook endpoints and their deliveries (`WebhooksMixin`).

Deliveries are enqueued by `StoreBase._enqueue_event` in the transaction of the
change that caused them; the delivery worker (`drip_mcp.sandbox.delivery`)
reads them with `due_deliveries` and stores each attempt with `record_attempt`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, StoreBase, _dump, iso_now, new_id

__all__ = ["WebhooksMixin", "passes_filters"]


class WebhooksMixin(StoreBase):
    """Webhooks (create, list, delete, rotate the secret) and the delivery outbox."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        description TEXT,
        secret TEXT NOT NULL,
        is_active INTEGER NOT NULL DEFAULT 1,
        filters TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        response_code INTEGER,
        error_message TEXT,
        next_attempt_at REAL NOT NULL,
        created_at TEXT NOT NULL,
        last_attempt_at TEXT
    );
    CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
    """

    def _seed(self) -> None:
        super()._seed()
        # Databases made before ``filters`` existed get the column (CREATE TABLE IF NOT EXISTS keeps old tables).
        columns = {row["name"] for row in self._conn.execute("PRAGMA table_info(webhooks)")}
        if "filters" not in columns:
            with self._write() as conn:
                conn.execute("ALTER TABLE webhooks ADD COLUMN filters TEXT")

    def create_webhook(
        self,
        *,
        url: str,
        events: list[str],
        description: str | None,
        secret: str,
        filters: Record | None = None,
    ) -> Record:
        """Register a webhook endpoint."""
        webhook_id, now = new_id(), iso_now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO webhooks (id, url, events, description, secret, filters, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (webhook_id, url, json.dumps(events), description, secret, _dump(filters), now, now),
            )
        return self.webhook(webhook_id)

    def update_webhook(self, webhook_id: str, changes: Record) -> Record:
        """Apply `changes` (url, events, description, is_active, filters; None clears) to a webhook."""
        encoders: dict[str, Callable[[Any], Any]] = {"events": json.dumps, "filters": _dump, "is_active": int}
        with self._write() as conn:
            self.webhook(webhook_id)
            for column, value in changes.items():
                assert column in ("url", "events", "description", "is_active", "filters")
                encoded = value if value is None or column not in encoders else encoders[column](value)
                conn.execute(f"UPDATE webhooks SET {column} = ? WHERE id = ?", (encoded, webhook_id))  # noqa: S608
            conn.execute("UPDATE webhooks SET updated_at = ? WHERE id = ?", (iso_now(), webhook_id))
        return self.webhook(webhook_id)

    def webhook_deliveries(self, webhook_id: str, *, limit: int) -> list[Record]:
        """The webhook's deliveries, newest first (404 if the webhook is unknown)."""
        self.webhook(webhook_id)
        return self._all(
            "SELECT * FROM deliveries WHERE webhook_id = ? ORDER BY rowid DESC LIMIT ?", (webhook_id, limit)
        )

    def webhook_delivery(self, webhook_id: str, delivery_id: str) -> Record:
        """One delivery of the webhook (404 if either is unknown or they do not belong together)."""
        self.webhook(webhook_id)
        delivery = self.delivery(delivery_id)
        if delivery["webhook_id"] != webhook_id:
            raise not_found("Delivery", delivery_id)
        return delivery

    def claim_for_retry(self, webhook_id: str, delivery_id: str) -> Record:
        """Mark a finished delivery SENDING for a manual retry; 409 while it is still pending or sending."""
        with self._write() as conn:
            delivery = self.webhook_delivery(webhook_id, delivery_id)
            if delivery["status"] not in ("DELIVERED", "FAILED"):
                raise ApiError(
                    409,
                    "DELIVERY_IN_PROGRESS",
                    f"Delivery {delivery_id} is {delivery['status']}: only DELIVERED or FAILED ones can be retried",
                )
            conn.execute("UPDATE deliveries SET status = 'SENDING' WHERE id = ?", (delivery_id,))
        return self.delivery(delivery_id)

    def webhook(self, webhook_id: str) -> Record:
        """The webhook with its delivery stats (404 if unknown)."""
        row = self._one(
            "SELECT w.*, COUNT(d.id) AS total,"
            " COALESCE(SUM(d.status = 'DELIVERED'), 0) AS delivered,"
            " COALESCE(SUM(d.status = 'FAILED'), 0) AS failed,"
            " COALESCE(SUM(d.status = 'PENDING'), 0) AS pending"
            " FROM webhooks w LEFT JOIN deliveries d ON d.webhook_id = w.id WHERE w.id = ? GROUP BY w.id",
            (webhook_id,),
        )
        if row is None:
            raise not_found("Webhook", webhook_id)
        return row

    def list_webhooks(self) -> list[Record]:
        """Webhooks, newest first, with delivery stats."""
        ids = self._conn.execute("SELECT id FROM webhooks ORDER BY rowid DESC").fetchall()
        return [self.webhook(row["id"]) for row in ids]

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its deliveries (404 if unknown)."""
        with self._write() as conn:
            if conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 0:
                raise not_found("Webhook", webhook_id)

    def rotate_webhook_secret(self, webhook_id: str, secret: str) -> None:
        """Replace a webhook's secret (404 if unknown)."""
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?", (secret, iso_now(), webhook_id)
            )
            if updated.rowcount == 0:
                raise not_found("Webhook", webhook_id)

    def create_test_delivery(self, webhook_id: str) -> Record:
        """Record a ``webhook.test`` delivery for one webhook (not picked up by the worker)."""
        webhook = self.webhook(webhook_id)
        event_id, delivery_id, now = new_id(), new_id(), iso_now()
        payload = json.dumps(
            {
                "id": event_id,
                "type": "webhook.test",
                "createdAt": now,
                "data": {"webhookId": webhook_id, "message": "Test event from the Drip sandbox"},
            },
            separators=(",", ":"),
        ).encode()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO deliveries (id, webhook_id, event_id, event_type, payload, status, next_attempt_at,"
                " created_at) VALUES (?, ?, ?, 'webhook.test', ?, 'SENDING', 0, ?)",
                (delivery_id, webhook["id"], event_id, payload, now),
            )
        return self.delivery(delivery_id)

    def due_deliveries(self, now: float, limit: int = 50) -> list[Record]:
        """PENDING deliveries whose next attempt is due, with their webhook's url and secret."""
        return self._all(
            "SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'PENDING' AND d.next_attempt_at <= ? ORDER BY d.rowid LIMIT ?",
            (now, limit),
        )

    def next_delivery_due(self) -> float | None:
        """When the earliest PENDING delivery is due (epoch seconds), or None."""
        value = self._scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'PENDING'")
        return None if value is None else float(value)

    def delivery(self, delivery_id: str) -> Record:
        """One delivery with its webhook's url and secret (404 if unknown)."""
        row = self._one(
            "SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
            (delivery_id,),
        )
        if row is None:
            raise not_found("Delivery", delivery_id)
        return row

    def list_deliveries(self, webhook_id: str | None = None) -> list[Record]:
        """Deliveries, oldest first (optionally of one webhook)."""
        return self._all("SELECT * FROM deliveries WHERE (?1 IS NULL OR webhook_id = ?1) ORDER BY rowid", (webhook_id,))

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: str,
        response_code: int | None,
        error_message: str | None,
        next_attempt_at: float = 0.0,
    ) -> None:
        """Store the outcome of one delivery attempt."""
        with self._write() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, response_code = ?, error_message = ?,"
                " next_attempt_at = ?, last_attempt_at = ? WHERE id = ?",
                (status, response_code, error_message, next_attempt_at, iso_now(), delivery_id),
            )


def passes_filters(filters_json: str | None, data: Record) -> bool:
    """Whether an event's `data` passes a webhook's ``filters`` (all given criteria must match).

    ``usageTypes`` is matched against ``data.usageType``, ``customerIds``
    against ``data.customerId`` and ``severities`` against ``data.severity``;
    a criterion is skipped for an event that does not carry that field.
    """
    if not filters_json:
        return True
    filters = json.loads(filters_json)
    for criterion, field in (("usageTypes", "usageType"), ("customerIds", "customerId"), ("severities", "severity")):
        wanted = filters.get(criterion)
        if wanted and data.get(field) is not None and data[field] not in wanted:
            return False
    return True
