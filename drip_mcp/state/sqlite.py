"""The default state store: one SQLite file in the state directory (WAL, 0600), or ``:memory:``.

Processes of one host that share the file (uvicorn workers) share its state;
every write is one short ``BEGIN IMMEDIATE`` transaction, so a budget
reservation is atomic across them. The outbox stays in its own file
(`drip_mcp.api.outbox`), so `outbox` is None here.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from drip_mcp.paths import ensure_private_dir
from drip_mcp.state.base import LEDGER_PRUNE_EVERY, BudgetExceeded, OutboxStore
from drip_mcp.state.migrations import SQLITE_MIGRATIONS

__all__ = ["MEMORY", "SqliteState"]

MEMORY = ":memory:"


class SqliteState:
    """`drip_mcp.state.base.StateStore` on SQLite (see the module docstring)."""

    kind = "sqlite"
    outbox: OutboxStore | None = None

    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        self.shared = self.path != MEMORY
        if self.shared:
            ensure_private_dir(Path(self.path).parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if self.shared:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self.migrate()

    # --- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def migrate(self) -> int:
        """Apply the migrations this file lacks; return the version it is at."""
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS state_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM state_schema").fetchone()
            current = int(row[0] or 0)
            for version, statements in enumerate(SQLITE_MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO state_schema (version) VALUES (?)", (version,))
                current = version
        return current

    async def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) FROM state_schema")
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def aclose(self) -> None:
        self.close()

    # --- ledger -----------------------------------------------------------------------------------

    async def add_ledger_entry(self, scope: str, entry: Mapping[str, Any], *, keep: int) -> None:
        with self._lock:  # one statement, so its own transaction (autocommit)
            row_id = self._conn.execute(
                "INSERT INTO ledger (scope, entry) VALUES (?, ?)", (scope, json.dumps(entry))
            ).lastrowid
            if row_id is not None and row_id % LEDGER_PRUNE_EVERY == 0:
                self._conn.execute(
                    "DELETE FROM ledger WHERE scope = ?1 AND id <= (SELECT id FROM ledger WHERE scope = ?1"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    (scope, keep),
                )

    async def ledger_entries(self, scope: str, *, last: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT entry FROM (SELECT id, entry FROM ledger WHERE scope = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (scope, last),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    # --- budgets ----------------------------------------------------------------------------------

    async def reserve(self, scope: str, amount: Decimal, budget: Decimal | None) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT spent, reserved FROM budgets WHERE scope = ?", (scope,)).fetchone()
            spent, reserved = (Decimal(row[0]), Decimal(row[1])) if row else (Decimal(0), Decimal(0))
            if budget is not None and amount > budget - spent - reserved:
                raise BudgetExceeded(max(Decimal(0), budget - spent - reserved))
            conn.execute(
                "INSERT INTO budgets (scope, spent, reserved) VALUES (?, ?, ?)"
                " ON CONFLICT (scope) DO UPDATE SET reserved = excluded.reserved",
                (scope, str(spent), str(reserved + amount)),
            )

    async def settle(self, scope: str, reserved: Decimal, spent: Decimal | None) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT spent, reserved FROM budgets WHERE scope = ?", (scope,)).fetchone()
            total, held = (Decimal(row[0]), Decimal(row[1])) if row else (Decimal(0), reserved)
            conn.execute(
                "INSERT INTO budgets (scope, spent, reserved) VALUES (?, ?, ?)"
                " ON CONFLICT (scope) DO UPDATE SET spent = excluded.spent, reserved = excluded.reserved",
                (scope, str(total + (spent or 0)), str(max(Decimal(0), held - reserved))),
            )

    async def budget_totals(self, scope: str) -> tuple[Decimal, Decimal]:
        row = self._one("SELECT spent, reserved FROM budgets WHERE scope = ?", (scope,))
        return (Decimal(row[0]), Decimal(row[1])) if row else (Decimal(0), Decimal(0))

    # --- confirm tokens ---------------------------------------------------------------------------

    async def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            cursor = conn.execute(
                "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING",
                (nonce, expires_at),
            )
            return cursor.rowcount == 1

    async def nonce_used(self, nonce: str, now: float) -> bool:
        with self._write() as conn:
            row = conn.execute("SELECT 1 FROM nonces WHERE nonce = ? AND expires_at >= ?", (nonce, now)).fetchone()
        return row is not None

    async def release_nonce(self, nonce: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM nonces WHERE nonce = ?", (nonce,))

    async def shared_secret(self, name: str) -> bytes:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO shared_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_bytes(32)),
            )
            row = conn.execute("SELECT value FROM shared_secrets WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    # --- webhook secret files ---------------------------------------------------------------------

    async def own_secret_file(self, tenant: str, webhook_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO secret_files (webhook_id, tenant) VALUES (?, ?)"
                " ON CONFLICT (webhook_id) DO UPDATE SET tenant = excluded.tenant",
                (webhook_id, tenant),
            )

    async def secret_file_owner(self, webhook_id: str) -> str | None:
        row = self._one("SELECT tenant FROM secret_files WHERE webhook_id = ?", (webhook_id,))
        return None if row is None else str(row[0])

    async def disown_secret_file(self, tenant: str, webhook_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM secret_files WHERE webhook_id = ? AND tenant = ?", (webhook_id, tenant))
            return cursor.rowcount == 1

    # --- tenant keys ------------------------------------------------------------------------------

    async def save_tenant_key(self, fingerprint: str, sealed: bytes) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tenant_keys (fingerprint, sealed) VALUES (?, ?)"
                " ON CONFLICT (fingerprint) DO UPDATE SET sealed = excluded.sealed",
                (fingerprint, sealed),
            )

    async def tenant_key(self, fingerprint: str) -> bytes | None:
        row = self._one("SELECT sealed FROM tenant_keys WHERE fingerprint = ?", (fingerprint,))
        return None if row is None else bytes(row[0])
