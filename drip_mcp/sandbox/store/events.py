"""The execution-events ledger (`EventsMixin`).

``POST /events`` writes ``execution_events``. Reads go through the
``ledger_v1`` view, the UNION of those events with the usage events of
`BillingMixin` (``eventType`` USAGE, ``actionName`` = the usage type, with
their charge) and the run events of `RunsMixin` (with the run's customer,
workflow and correlation id), so usage and run writes appear in the ledger
without the usage or run write paths knowing about it.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from drip_mcp.sandbox.errors import not_found
from drip_mcp.sandbox.store.base import Record, _dump, iso_now, new_id
from drip_mcp.sandbox.store.billing import BillingMixin
from drip_mcp.sandbox.store.runs import RunsMixin

__all__ = ["LEDGER_FILTERS", "SIGNER_ADDRESS", "EventsMixin"]

# Receipts are signed with a fixed sandbox key: stable, and useless outside the sandbox.
_RECEIPT_KEY = b"drip-sandbox-receipt-key"
SIGNER_ADDRESS = "0x" + hashlib.sha256(b"drip-sandbox-signer").hexdigest()[:40]

# Query filter name -> ledger column.
LEDGER_FILTERS = {
    "customerId": "customer_id",
    "runId": "run_id",
    "workflowId": "workflow_id",
    "eventType": "event_type",
    "outcome": "outcome",
    "actionName": "action_name",
    "parentEventId": "parent_event_id",
    "idempotencyKey": "idempotency_key",
    "correlationId": "correlation_id",
}

_EVENT_COLUMNS = (
    "customer_id",
    "idempotency_key",
    "event_type",
    "action_name",
    "outcome",
    "explanation",
    "run_id",
    "workflow_id",
    "parent_event_id",
    "retry_of_event_id",
    "attempt_number",
    "correlation_id",
    "span_id",
    "usage_type",
    "quantity",
    "units",
    "description",
    "metadata",
    "input_hash",
    "output_hash",
    "duration_ms",
    "error_message",
    "error_code",
)


class EventsMixin(BillingMixin, RunsMixin):
    """Execution events, and the ledger view over them, usage events and run events."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS execution_events (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        idempotency_key TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        action_name TEXT,
        outcome TEXT NOT NULL,
        explanation TEXT,
        run_id TEXT,
        workflow_id TEXT,
        parent_event_id TEXT,
        retry_of_event_id TEXT,
        attempt_number INTEGER NOT NULL DEFAULT 1,
        correlation_id TEXT,
        span_id TEXT,
        usage_type TEXT,
        quantity TEXT,
        units TEXT,
        description TEXT,
        metadata TEXT,
        input_hash TEXT,
        output_hash TEXT,
        duration_ms INTEGER,
        error_message TEXT,
        error_code TEXT,
        receipt TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE VIEW IF NOT EXISTS ledger_v1 AS
        SELECT 'event' AS source, e.rowid AS ord, e.id, e.customer_id, e.event_type, e.action_name, e.outcome,
            e.explanation, e.idempotency_key, e.run_id, e.workflow_id, e.parent_event_id, e.retry_of_event_id,
            e.attempt_number, e.correlation_id, e.created_at, NULL AS charge_id, NULL AS charge_micros,
            NULL AS cost_units, e.usage_type, e.quantity, e.units, e.description, e.metadata, e.input_hash,
            e.output_hash
        FROM execution_events e
        UNION ALL
        SELECT 'usage', u.rowid, u.id, u.customer_id, 'USAGE', u.usage_type,
            CASE c.status WHEN 'FAILED' THEN 'FAILED' WHEN 'PENDING' THEN 'PENDING' ELSE 'SUCCEEDED' END,
            NULL, u.idempotency_key, NULL, NULL, NULL, NULL, 1, NULL, u.created_at, u.charge_id, c.amount_micros,
            NULL, u.usage_type, u.quantity, u.units, u.description, u.metadata, NULL, NULL
        FROM usage_events u LEFT JOIN charges c ON c.id = u.charge_id
        UNION ALL
        SELECT 'run', re.seq, re.id, r.customer_id, re.event_type, NULL, 'SUCCEEDED', NULL, re.idempotency_key,
            re.run_id, r.workflow_id, re.parent_event_id, NULL, 1, COALESCE(re.correlation_id, r.correlation_id),
            re.created_at, NULL, NULL, re.cost_units, NULL, re.quantity, re.units, re.description, re.metadata,
            NULL, NULL
        FROM run_events re JOIN runs r ON r.id = re.run_id;
    """

    def record_execution_event(
        self, customer_id: str | None, external_customer_id: str | None, fields: Record
    ) -> tuple[Record, bool]:
        """Store one event; a known ``idempotency_key`` returns the original and True."""
        with self._write() as conn:
            existing = self._one(
                "SELECT * FROM execution_events WHERE idempotency_key = ?", (fields["idempotency_key"],)
            )
            if existing is not None:
                return existing, True
            customer = self._resolve_customer(customer_id, external_customer_id)
            if fields.get("run_id") is not None:
                run = self.run(fields["run_id"])
                fields["workflow_id"] = fields.get("workflow_id") or run["workflow_id"]
                fields["correlation_id"] = fields.get("correlation_id") or run["correlation_id"]
            if fields.get("workflow_id") is not None:
                self._workflow_row(fields["workflow_id"])
            row = {column: fields.get(column) for column in _EVENT_COLUMNS}
            row.update(
                id=new_id(),
                customer_id=customer["id"],
                quantity=None if fields.get("quantity") is None else str(fields["quantity"]),
                metadata=_dump(fields.get("metadata")),
                attempt_number=fields.get("attempt_number") or 1,
                created_at=iso_now(),
            )
            row["receipt"] = json.dumps(_receipt(row), separators=(",", ":"))
            columns = [*_EVENT_COLUMNS, "id", "receipt", "created_at"]
            conn.execute(
                f"INSERT INTO execution_events ({', '.join(columns)})"  # noqa: S608 (fixed column names)
                f" VALUES ({', '.join(':' + column for column in columns)})",
                row,
            )
            return row, False

    def _ledger_where(self, filters: Record, since: str | None, until: str | None) -> tuple[str, list[object]]:
        clauses, params = [], []
        for column, value in filters.items():
            clauses.append(f"{column} = ?")
            params.append(value)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("created_at <= ?")
            params.append(until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def list_ledger(
        self, filters: Record, *, since: str | None, until: str | None, limit: int, offset: int
    ) -> tuple[list[Record], int]:
        """Ledger entries matching `filters` (column -> value), newest first, and the total count."""
        assert set(filters) <= set(LEDGER_FILTERS.values())
        where, params = self._ledger_where(filters, since, until)
        total = int(self._scalar(f"SELECT COUNT(*) FROM ledger_v1{where}", tuple(params)))  # noqa: S608
        rows = self._all(
            f"SELECT * FROM ledger_v1{where} ORDER BY created_at DESC, ord DESC, source LIMIT ? OFFSET ?",  # noqa: S608
            (*params, limit, offset),
        )
        return rows, total

    def ledger_entry(self, event_id: str) -> Record:
        """One ledger entry (404 if unknown)."""
        row = self._one("SELECT * FROM ledger_v1 WHERE id = ?", (event_id,))
        if row is None:
            raise not_found("Event", event_id)
        return row

    def ledger_by(self, column: str, value: str) -> list[Record]:
        """Entries whose `column` is `value`, oldest first."""
        assert column in ("parent_event_id", "retry_of_event_id", "correlation_id")
        return self._all(
            f"SELECT * FROM ledger_v1 WHERE {column} = ? ORDER BY created_at, ord, source",  # noqa: S608
            (value,),
        )

    def execution_receipt(self, event_id: str) -> Record | None:
        """The stored receipt of an event written by ``POST /events`` (None for usage and run events)."""
        row = self._one("SELECT receipt FROM execution_events WHERE id = ?", (event_id,))
        return None if row is None else dict(json.loads(row["receipt"]))


def _receipt(row: Record) -> Record:
    canonical = json.dumps(
        {key: row[key] for key in sorted(row) if key != "receipt"}, separators=(",", ":"), default=str
    ).encode()
    batch_hash = "0x" + hashlib.sha256(canonical).hexdigest()
    signature = "0x" + hmac.new(_RECEIPT_KEY, batch_hash.encode(), hashlib.sha256).hexdigest()
    return {
        "batchId": new_id(),
        "eventCount": 1,
        "batchHash": batch_hash,
        "receivedAt": row["created_at"],
        "signature": signature,
        "signerAddress": SIGNER_ADDRESS,
    }
