"""Workflows, runs and run events (`RunsMixin`)."""

from __future__ import annotations

import time
from decimal import Decimal

from drip_mcp.sandbox.errors import ApiError, not_found
from drip_mcp.sandbox.store.base import Record, _dump, iso_at, iso_now, new_id
from drip_mcp.sandbox.store.customers import CustomersMixin

__all__ = ["RunsMixin"]


class RunsMixin(CustomersMixin):
    """Workflows, runs of a workflow for a customer, their events, and one-shot recorded runs."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS workflows (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        product_surface TEXT NOT NULL,
        chain TEXT,
        description TEXT,
        metadata TEXT,
        is_active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        workflow_id TEXT NOT NULL REFERENCES workflows (id),
        external_run_id TEXT UNIQUE,
        correlation_id TEXT,
        parent_run_id TEXT,
        metadata TEXT,
        status TEXT NOT NULL,
        error_message TEXT,
        error_code TEXT,
        started_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT
    );
    CREATE TABLE IF NOT EXISTS run_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        run_id TEXT NOT NULL REFERENCES runs (id),
        event_type TEXT NOT NULL,
        quantity TEXT NOT NULL,
        units TEXT,
        description TEXT,
        cost_units TEXT,
        correlation_id TEXT,
        parent_event_id TEXT,
        idempotency_key TEXT UNIQUE,
        metadata TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS run_events_run ON run_events (run_id, seq);
    """

    def create_workflow(self, fields: Record) -> Record:
        """Create a workflow; 409 if its slug exists."""
        with self._write():
            return self._insert_workflow(fields)

    def _insert_workflow(self, fields: Record) -> Record:
        if self._one("SELECT id FROM workflows WHERE slug = ?", (fields["slug"],)) is not None:
            raise ApiError(409, "DUPLICATE_WORKFLOW", f"A workflow with slug '{fields['slug']}' already exists")
        now = iso_now()
        row = {
            "id": new_id(),
            "name": fields["name"],
            "slug": fields["slug"],
            "product_surface": fields.get("product_surface") or "CUSTOM",
            "chain": fields.get("chain"),
            "description": fields.get("description"),
            "metadata": _dump(fields.get("metadata")),
            "created_at": now,
        }
        self._conn.execute(
            "INSERT INTO workflows (id, name, slug, product_surface, chain, description, metadata, created_at,"
            " updated_at) VALUES (:id, :name, :slug, :product_surface, :chain, :description, :metadata,"
            " :created_at, :created_at)",
            row,
        )
        return self._workflow_row(row["id"])

    def _workflow_row(self, workflow_id: str) -> Record:
        row = self._one(
            "SELECT w.*, (SELECT COUNT(*) FROM runs r WHERE r.workflow_id = w.id) AS run_count"
            " FROM workflows w WHERE w.id = ?",
            (workflow_id,),
        )
        if row is None:
            raise not_found("Workflow", workflow_id)
        return row

    def list_workflows(self, *, limit: int) -> list[Record]:
        """Workflows, newest first, with their run counts."""
        ids = self._conn.execute("SELECT id FROM workflows ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [self._workflow_row(row["id"]) for row in ids]

    def workflow(self, workflow_id: str) -> Record:
        """The workflow with its run count (404 if unknown)."""
        return self._workflow_row(workflow_id)

    def update_workflow(self, workflow_id: str, changes: Record) -> Record:
        """Apply `changes` (name, description, product_surface, chain, metadata, is_active) to a workflow."""
        with self._write() as conn:
            self._workflow_row(workflow_id)
            for column, value in changes.items():
                assert column in ("name", "description", "product_surface", "chain", "metadata", "is_active")
                encoded = _dump(value) if column == "metadata" else int(value) if isinstance(value, bool) else value
                conn.execute(f"UPDATE workflows SET {column} = ? WHERE id = ?", (encoded, workflow_id))  # noqa: S608
            conn.execute("UPDATE workflows SET updated_at = ? WHERE id = ?", (iso_now(), workflow_id))
            return self._workflow_row(workflow_id)

    def list_runs(
        self,
        *,
        customer_id: str | None,
        workflow_id: str | None,
        status: str | None,
        since: str | None,
        until: str | None,
        limit: int,
    ) -> list[Record]:
        """Runs matching the filters (``started_at`` within [since, until]), newest first, with totals."""
        ids = self._conn.execute(
            "SELECT id FROM runs WHERE (?1 IS NULL OR customer_id = ?1) AND (?2 IS NULL OR workflow_id = ?2)"
            " AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR started_at >= ?4)"
            " AND (?5 IS NULL OR started_at <= ?5) ORDER BY rowid DESC LIMIT ?6",
            (customer_id, workflow_id, status, since, until, limit),
        ).fetchall()
        return [self.run(row["id"]) for row in ids]

    def start_run(self, fields: Record) -> Record:
        """Create a PENDING run of an existing workflow for an existing customer."""
        with self._write():
            return self._insert_run(fields, self._workflow_row(fields["workflow_id"]))

    def _insert_run(self, fields: Record, workflow: Record, *, status: str = "PENDING") -> Record:
        self._customer_row(fields["customer_id"])
        external_run_id = fields.get("external_run_id")
        existing = (
            self._one("SELECT id FROM runs WHERE external_run_id = ?", (external_run_id,))
            if external_run_id is not None
            else None
        )
        if existing is not None:
            # Like existingCustomerId on a duplicate customer: lets a retrying client find the run it made.
            raise ApiError(
                409,
                "DUPLICATE_RUN",
                f"A run with externalRunId '{external_run_id}' already exists",
                extra={"existingRunId": existing["id"]},
            )
        now_s = time.time()
        now = iso_at(now_s)
        run_id = new_id()
        self._conn.execute(
            "INSERT INTO runs (id, customer_id, workflow_id, external_run_id, correlation_id, parent_run_id,"
            " metadata, status, started_ms, created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                fields["customer_id"],
                workflow["id"],
                external_run_id,
                fields.get("correlation_id"),
                fields.get("parent_run_id"),
                _dump(fields.get("metadata")),
                status,
                int(now_s * 1000),
                now,
                now,
            ),
        )
        return self.run(run_id)

    def run(self, run_id: str) -> Record:
        """The run with its workflow name and event totals (404 if unknown)."""
        row = self._one(
            "SELECT r.*, w.name AS workflow_name, cu.external_customer_id AS customer_name,"
            " (SELECT COUNT(*) FROM run_events e WHERE e.run_id = r.id) AS event_count"
            " FROM runs r JOIN workflows w ON w.id = r.workflow_id JOIN customers cu ON cu.id = r.customer_id"
            " WHERE r.id = ?",
            (run_id,),
        )
        if row is None:
            raise not_found("Run", run_id)
        quantity, cost = Decimal(0), Decimal(0)
        for event in self._conn.execute(
            "SELECT quantity, cost_units FROM run_events WHERE run_id = ?", (run_id,)
        ).fetchall():
            quantity += Decimal(event["quantity"])
            cost += Decimal(event["cost_units"] or 0)
        row["total_quantity"] = quantity
        row["total_cost_units"] = cost
        return row

    def end_run(self, run_id: str, *, status: str, error_message: str | None, error_code: str | None) -> Record:
        """Move a run to a terminal status; 409 ``RUN_ALREADY_ENDED`` if it is terminal already."""
        with self._write():
            run = self.run(run_id)
            if run["ended_ms"] is not None:
                raise _run_already_ended(run)
            self._finish_run(run_id, status=status, error_message=error_message, error_code=error_code)
            return self.run(run_id)

    def _finish_run(self, run_id: str, *, status: str, error_message: str | None, error_code: str | None) -> None:
        now_s = time.time()
        self._conn.execute(
            "UPDATE runs SET status = ?, error_message = ?, error_code = ?, ended_ms = ?, ended_at = ? WHERE id = ?",
            (status, error_message, error_code, int(now_s * 1000), iso_at(now_s), run_id),
        )

    def add_run_events(self, events: list[Record]) -> list[tuple[Record, bool]]:
        """Append events to their runs; each is (event, is_duplicate) in input order.

        An event whose idempotency key is stored already is not added again;
        the stored one is returned. The first event moves a PENDING run to
        RUNNING; events on an ended run are refused with 409.
        """
        with self._write():
            return [self._insert_run_event(event) for event in events]

    def _insert_run_event(self, fields: Record) -> tuple[Record, bool]:
        key = fields.get("idempotency_key")
        if key is not None:
            existing = self._one("SELECT * FROM run_events WHERE idempotency_key = ?", (key,))
            if existing is not None:
                return existing, True
        run = self.run(fields["run_id"])
        if run["ended_ms"] is not None:
            raise _run_already_ended(run)
        if run["status"] == "PENDING":
            self._conn.execute("UPDATE runs SET status = 'RUNNING' WHERE id = ?", (run["id"],))
        event = {
            "id": new_id(),
            "run_id": run["id"],
            "event_type": fields["event_type"],
            "quantity": str(fields.get("quantity", 1)),
            "units": fields.get("units"),
            "description": fields.get("description"),
            "cost_units": None if fields.get("cost_units") is None else str(fields["cost_units"]),
            "correlation_id": fields.get("correlation_id"),
            "parent_event_id": fields.get("parent_event_id"),
            "idempotency_key": key,
            "metadata": _dump(fields.get("metadata")),
            "created_at": iso_now(),
        }
        cursor = self._conn.execute(
            "INSERT INTO run_events (id, run_id, event_type, quantity, units, description, cost_units,"
            " correlation_id, parent_event_id, idempotency_key, metadata, created_at) VALUES (:id, :run_id,"
            " :event_type, :quantity, :units, :description, :cost_units, :correlation_id, :parent_event_id,"
            " :idempotency_key, :metadata, :created_at)",
            event,
        )
        event["seq"] = cursor.lastrowid
        return event, False

    def run_events(self, run_id: str, *, after_seq: int, limit: int) -> list[Record]:
        """Up to `limit` events of a run with ``seq > after_seq``, oldest first."""
        return self._all(
            "SELECT * FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, after_seq, limit),
        )

    def record_run(self, fields: Record, events: list[Record]) -> tuple[Record, int]:
        """Create a run with its events and end it at once; returns (run, events created).

        ``workflow`` may be a workflow id or slug; an unknown slug creates the
        workflow, named after the slug in Title Case.
        """
        with self._write():
            reference = fields["workflow"]
            workflow = self._one("SELECT * FROM workflows WHERE id = ?1 OR slug = ?1", (reference,))
            if workflow is None:
                name = " ".join(part.capitalize() for part in reference.replace("-", " ").replace("_", " ").split())
                workflow = self._insert_workflow({"name": name or reference, "slug": reference})
            run = self._insert_run(fields, workflow, status="RUNNING")
            for event in events:
                self._insert_run_event({**event, "run_id": run["id"]})
            self._finish_run(
                run["id"],
                status=fields["status"],
                error_message=fields.get("error_message"),
                error_code=fields.get("error_code"),
            )
            return self.run(run["id"]), len(events)


def _run_already_ended(run: Record) -> ApiError:
    return ApiError(409, "RUN_ALREADY_ENDED", f"Run {run['id']} has already ended with status {run['status']}")
