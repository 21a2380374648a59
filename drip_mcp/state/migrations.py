"""Versioned schema migrations of the state store, applied in order at start (and by ``drip-mcp state migrate``).

Each migration is a list of statements; a store records the highest version it
applied in ``state_schema``. A migration is never edited once released: add the
next one. PostgreSQL applies them under a transaction-scoped advisory lock, so
processes starting together migrate once.
"""

from __future__ import annotations

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "latest_version"]

_COMMON_V1 = [
    "CREATE TABLE IF NOT EXISTS ledger (id {serial} PRIMARY KEY, scope TEXT NOT NULL, entry TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_scope ON ledger (scope, id)",
    "CREATE TABLE IF NOT EXISTS budgets (scope TEXT PRIMARY KEY, spent {money} NOT NULL DEFAULT 0,"
    " reserved {money} NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shared_secrets (name TEXT PRIMARY KEY, value {bytes} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS secret_files (webhook_id TEXT PRIMARY KEY, tenant TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tenant_keys (fingerprint TEXT PRIMARY KEY, sealed {bytes} NOT NULL)",
]

SQLITE_MIGRATIONS: list[list[str]] = [
    [s.format(serial="INTEGER", money="TEXT", bytes="BLOB") for s in _COMMON_V1],
]

POSTGRES_MIGRATIONS: list[list[str]] = [
    [
        *(s.format(serial="BIGSERIAL", money="NUMERIC(38, 12)", bytes="BYTEA") for s in _COMMON_V1),
        """CREATE TABLE IF NOT EXISTS outbox (
            id BIGSERIAL PRIMARY KEY,
            scope TEXT NOT NULL,
            tenant TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            body TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            last_error_code TEXT,
            last_status INTEGER,
            last_error TEXT,
            sent_at DOUBLE PRECISION,
            UNIQUE (scope, endpoint, idempotency_key)
        )""",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, scope, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS outbox_tenant ON outbox (tenant, status)",
    ],
]


def latest_version(migrations: list[list[str]]) -> int:
    return len(migrations)
