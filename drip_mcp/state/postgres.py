"""The shared state store: PostgreSQL (``--state-url postgresql://...``), through one async connection pool.

Every process of a fleet that is given the same URL shares, per tenant:

* **the ledger** (rows keyed by scope);
* **budgets**, reserved atomically: one ``UPDATE budgets SET reserved = reserved + a
  WHERE scope = s AND spent + reserved + a <= budget`` per reservation. PostgreSQL
  re-checks the condition on the row it locked, so concurrent reservations from any
  number of processes never pass the budget together;
* **confirm-token nonces** (``INSERT ... ON CONFLICT DO NOTHING``: one winner) and the
  token HMAC secret (made once, read by everyone);
* **the outbox** (`PostgresOutbox`): rows are claimed with ``FOR UPDATE SKIP LOCKED``
  and leased for `LEASE_S` seconds; a live holder renews its leases every
  ``LEASE_S / 3`` (`PostgresOutbox.heartbeat`), so a claim dies with its holder: a
  killed process stops renewing and its rows are claimable again within `LEASE_S`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from drip_mcp.errors import ConfigurationError, DripError, RateLimitError
from drip_mcp.state.base import LEDGER_PRUNE_EVERY, BudgetExceeded, KeyedStatus, OutboxCounts, OutboxRow
from drip_mcp.state.migrations import POSTGRES_MIGRATIONS

__all__ = ["LEASE_S", "PostgresOutbox", "PostgresState", "open_postgres_state"]

logger = logging.getLogger("drip_mcp.state")

LEASE_S = 10.0
POOL_MAX = 20
_MIGRATION_LOCK = 0x64726970  # "drip": serializes migrations of processes starting together
SENT_RETENTION_S = 7 * 86400.0


def _backoff_s(attempts: int, retry_after: float | None) -> float:
    """Between attempts of one row: 1 s * 2**n, capped at 60 s, or Retry-After (capped at 300 s)."""
    if retry_after is not None:
        return min(retry_after, 300.0)
    return float(min(60.0, 2.0 ** min(attempts, 6)))


class PostgresState:
    """`drip_mcp.state.base.StateStore` on PostgreSQL (see the module docstring)."""

    kind = "postgresql"
    shared = True

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Any]], outbox: PostgresOutbox) -> None:
        self._pool = pool
        self.outbox = outbox

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description else []

    async def migrate(self) -> int:
        return await migrate(self._pool)

    async def schema_version(self) -> int:
        rows = await self._exec("SELECT COALESCE(MAX(version), 0) FROM state_schema")
        return int(rows[0][0])

    # --- ledger -----------------------------------------------------------------------------------

    async def add_ledger_entry(self, scope: str, entry: Mapping[str, Any], *, keep: int) -> None:
        rows = await self._exec(
            "INSERT INTO ledger (scope, entry) VALUES (%s, %s) RETURNING id", (scope, json.dumps(entry))
        )
        if rows[0][0] % LEDGER_PRUNE_EVERY == 0:
            await self._exec(
                "DELETE FROM ledger WHERE scope = %s AND id <= (SELECT id FROM ledger WHERE scope = %s"
                " ORDER BY id DESC OFFSET %s LIMIT 1)",
                (scope, scope, keep),
            )

    async def ledger_entries(self, scope: str, *, last: int) -> list[dict[str, Any]]:
        rows = await self._exec(
            "SELECT entry FROM (SELECT id, entry FROM ledger WHERE scope = %s ORDER BY id DESC LIMIT %s) AS newest"
            " ORDER BY id",
            (scope, last),
        )
        return [json.loads(row[0]) for row in rows]

    # --- budgets ----------------------------------------------------------------------------------

    async def reserve(self, scope: str, amount: Decimal, budget: Decimal | None) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("INSERT INTO budgets (scope) VALUES (%s) ON CONFLICT (scope) DO NOTHING", (scope,))
            cursor = await conn.execute(
                "UPDATE budgets SET reserved = reserved + %(a)s WHERE scope = %(s)s"
                " AND (%(b)s::numeric IS NULL OR spent + reserved + %(a)s <= %(b)s) RETURNING spent",
                {"a": amount, "s": scope, "b": budget},
            )
            if await cursor.fetchone() is None:
                cursor = await conn.execute("SELECT spent + reserved FROM budgets WHERE scope = %s", (scope,))
                row = await cursor.fetchone()
                used = Decimal(row[0]) if row else Decimal(0)
                raise BudgetExceeded(max(Decimal(0), (budget or Decimal(0)) - used))

    async def settle(self, scope: str, reserved: Decimal, spent: Decimal | None) -> None:
        await self._exec(
            "UPDATE budgets SET reserved = GREATEST(reserved - %s, 0), spent = spent + %s WHERE scope = %s",
            (reserved, spent or Decimal(0), scope),
        )

    async def budget_totals(self, scope: str) -> tuple[Decimal, Decimal]:
        rows = await self._exec("SELECT spent, reserved FROM budgets WHERE scope = %s", (scope,))
        return (Decimal(rows[0][0]), Decimal(rows[0][1])) if rows else (Decimal(0), Decimal(0))

    # --- confirm tokens ---------------------------------------------------------------------------

    async def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM nonces WHERE expires_at < %s", (now,))
            cursor = await conn.execute(
                "INSERT INTO nonces (nonce, expires_at) VALUES (%s, %s) ON CONFLICT (nonce) DO NOTHING",
                (nonce, expires_at),
            )
            return cursor.rowcount == 1

    async def nonce_used(self, nonce: str, now: float) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT 1 FROM nonces WHERE nonce = %s AND expires_at >= %s", (nonce, now))
            return await cursor.fetchone() is not None

    async def release_nonce(self, nonce: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM nonces WHERE nonce = %s", (nonce,))

    async def shared_secret(self, name: str) -> bytes:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO shared_secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_bytes(32)),
            )
            cursor = await conn.execute("SELECT value FROM shared_secrets WHERE name = %s", (name,))
            row = await cursor.fetchone()
        assert row is not None
        return bytes(row[0])

    # --- webhook secret files ---------------------------------------------------------------------

    async def own_secret_file(self, tenant: str, webhook_id: str) -> None:
        await self._exec(
            "INSERT INTO secret_files (webhook_id, tenant) VALUES (%s, %s)"
            " ON CONFLICT (webhook_id) DO UPDATE SET tenant = excluded.tenant",
            (webhook_id, tenant),
        )

    async def secret_file_owner(self, webhook_id: str) -> str | None:
        rows = await self._exec("SELECT tenant FROM secret_files WHERE webhook_id = %s", (webhook_id,))
        return str(rows[0][0]) if rows else None

    async def disown_secret_file(self, tenant: str, webhook_id: str) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM secret_files WHERE webhook_id = %s AND tenant = %s", (webhook_id, tenant)
            )
            return cursor.rowcount == 1

    # --- tenant keys ------------------------------------------------------------------------------

    async def save_tenant_key(self, fingerprint: str, sealed: bytes) -> None:
        await self._exec(
            "INSERT INTO tenant_keys (fingerprint, sealed) VALUES (%s, %s)"
            " ON CONFLICT (fingerprint) DO UPDATE SET sealed = excluded.sealed",
            (fingerprint, sealed),
        )

    async def tenant_key(self, fingerprint: str) -> bytes | None:
        rows = await self._exec("SELECT sealed FROM tenant_keys WHERE fingerprint = %s", (fingerprint,))
        return bytes(rows[0][0]) if rows else None


_ROW_FIELDS = (
    "id, scope, tenant, endpoint, method, path, body, idempotency_key, status, attempts,"
    " last_error_code, last_status, last_error"
)


class PostgresOutbox:
    """The outbox table shared by a fleet (`drip_mcp.state.base.OutboxStore`); see the module docstring."""

    where = "the shared PostgreSQL outbox"

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        *,
        owner: str | None = None,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = lease_s
        self._clock = clock

    async def _rows(self, sql: str, params: Mapping[str, Any]) -> list[OutboxRow]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, params)
            return [OutboxRow(**row) for row in await cursor.fetchall()]

    async def _run(self, sql: str, params: Mapping[str, Any]) -> int:
        async with self._pool.connection() as conn:
            return (await conn.execute(sql, params)).rowcount

    async def put(
        self, *, scope: str, tenant: str, endpoint: str, method: str, path: str, body: bytes, idempotency_key: str
    ) -> int:
        now = self._clock()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO outbox (scope, tenant, endpoint, method, path, body, idempotency_key, status, created_at,"
                " updated_at, next_attempt_at, lease_owner, lease_until)"
                " VALUES (%(scope)s, %(tenant)s, %(endpoint)s, %(method)s, %(path)s, %(body)s, %(key)s, 'pending',"
                " %(now)s, %(now)s, %(now)s, %(owner)s, %(until)s)"
                " ON CONFLICT (scope, endpoint, idempotency_key) DO UPDATE SET path = excluded.path,"
                " body = excluded.body, status = 'pending', updated_at = excluded.updated_at,"
                " lease_owner = excluded.lease_owner, lease_until = excluded.lease_until RETURNING id",
                {
                    "scope": scope,
                    "tenant": tenant,
                    "endpoint": endpoint,
                    "method": method,
                    "path": path,
                    "body": body.decode(),
                    "key": idempotency_key,
                    "now": now,
                    "owner": self.owner,
                    "until": now + self.lease_s,
                },
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def mark_sent(self, entry_id: int, *, status: int | None = None) -> None:
        now = self._clock()
        await self._run(
            "UPDATE outbox SET status = 'sent', sent_at = %(now)s, updated_at = %(now)s, attempts = attempts + 1,"
            " last_status = %(status)s, lease_owner = NULL, lease_until = NULL WHERE id = %(id)s",
            {"now": now, "status": status, "id": entry_id},
        )

    async def defer(self, entry_id: int, error: DripError) -> float:
        now = self._clock()
        retry_after = error.retry_after if isinstance(error, RateLimitError) else None
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute("SELECT attempts FROM outbox WHERE id = %s FOR UPDATE", (entry_id,))
            row = await cursor.fetchone()
            due = now + _backoff_s(int(row[0]) if row else 0, retry_after)
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %(due)s, updated_at = %(now)s,"
                " last_error_code = %(code)s, last_status = %(st)s, last_error = %(msg)s, lease_owner = NULL,"
                " lease_until = NULL WHERE id = %(id)s AND status = 'pending'",
                {
                    "due": due,
                    "now": now,
                    "code": error.code,
                    "st": error.status,
                    "msg": error.message[:500],
                    "id": entry_id,
                },
            )
        return due

    async def bury(self, entry_id: int, error: DripError) -> None:
        await self._run(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, updated_at = %(now)s,"
            " last_error_code = %(code)s, last_status = %(st)s, last_error = %(msg)s, lease_owner = NULL,"
            " lease_until = NULL WHERE id = %(id)s AND status = 'pending'",
            {"now": self._clock(), "code": error.code, "st": error.status, "msg": error.message[:500], "id": entry_id},
        )

    async def release(self, entry_id: int) -> None:
        await self._run(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = %(id)s AND lease_owner = %(me)s",
            {"id": entry_id, "me": self.owner},
        )

    async def claim(self, scope: str, *, limit: int = 20, force: bool = False) -> list[OutboxRow]:
        """Lease up to `limit` due pending rows of `scope` (``FOR UPDATE SKIP LOCKED``: never a row another holds)."""
        now = self._clock()
        rows = await self._rows(
            "UPDATE outbox SET lease_owner = %(me)s, lease_until = %(until)s WHERE id IN ("  # noqa: S608 - constant columns
            " SELECT id FROM outbox WHERE status = 'pending' AND scope = %(scope)s AND next_attempt_at <= %(due)s"
            " AND (lease_until IS NULL OR lease_until < %(now)s) ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_ROW_FIELDS}",
            {
                "me": self.owner,
                "until": now + self.lease_s,
                "scope": scope,
                "due": float("inf") if force else now,
                "now": now,
                "limit": limit,
            },
        )
        return sorted(rows, key=lambda r: r.id)

    async def recover_abandoned(self) -> int:
        """Nothing to do: a dead holder stops renewing, and its leases run out within `lease_s`."""
        return 0

    async def next_due(self, scope: str) -> float | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, 0))) FROM outbox"
                " WHERE status = 'pending' AND scope = %s",
                (scope,),
            )
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def counts(self, scope: str | None = None, *, tenant: str | None = None) -> OutboxCounts:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE (%(scope)s::text IS NULL OR scope = %(scope)s)"
                " AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s) GROUP BY status",
                {"scope": scope, "tenant": tenant},
            )
            found = {str(status): int(n) for status, n in await cursor.fetchall()}
        return OutboxCounts(pending=found.get("pending", 0), dead=found.get("dead", 0), sent=found.get("sent", 0))

    async def with_key_prefix(self, scope: str, prefix: str, *, tenant: str | None = None) -> list[KeyedStatus]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT idempotency_key, status, last_error_code FROM outbox WHERE scope = %(scope)s"
                " AND starts_with(idempotency_key, %(prefix)s)"
                " AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s) ORDER BY id",
                {"scope": scope, "prefix": prefix, "tenant": tenant},
            )
            return [KeyedStatus(str(key), status, code) for key, status, code in await cursor.fetchall()]

    async def entries(
        self, *, status: str | None = None, tenant: str | None = None, limit: int = 50
    ) -> list[OutboxRow]:
        return await self._rows(
            f"SELECT {_ROW_FIELDS} FROM outbox WHERE (%(status)s::text IS NULL OR status = %(status)s)"  # noqa: S608
            " AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s) ORDER BY id DESC LIMIT %(limit)s",
            {"status": status, "tenant": tenant, "limit": limit},
        )

    async def waiting_scopes(self) -> list[str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT DISTINCT scope FROM outbox WHERE status = 'pending' ORDER BY scope")
            return [str(row[0]) for row in await cursor.fetchall()]

    async def retry_dead(self) -> int:
        now = self._clock()
        return await self._run(
            "UPDATE outbox SET status = 'pending', next_attempt_at = %(now)s, updated_at = %(now)s,"
            " lease_owner = NULL, lease_until = NULL WHERE status = 'dead'",
            {"now": now},
        )

    async def prune(self) -> int:
        return await self._run(
            "DELETE FROM outbox WHERE status = 'sent' AND sent_at < %(t)s", {"t": self._clock() - SENT_RETENTION_S}
        )

    async def renew_leases(self) -> int:
        """Extend every lease this holder has (rows it is sending or has claimed)."""
        return await self._run(
            "UPDATE outbox SET lease_until = %(until)s WHERE lease_owner = %(me)s AND status = 'pending'",
            {"until": self._clock() + self.lease_s, "me": self.owner},
        )

    async def heartbeat(self) -> None:
        """Renew this holder's leases every ``lease_s / 3`` until cancelled (never raises)."""
        while True:
            await anyio.sleep(self.lease_s / 3)
            try:
                await self.renew_leases()
            except Exception:
                logger.exception("renewing outbox leases failed; retrying")


async def migrate(pool: AsyncConnectionPool[AsyncConnection[Any]]) -> int:
    """Apply the missing migrations under an advisory lock; return the schema version."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS state_schema (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)"
        )
        cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM state_schema")
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        for version, statements in enumerate(POSTGRES_MIGRATIONS, start=1):
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(statement.encode())
            await conn.execute("INSERT INTO state_schema (version, applied_at) VALUES (%s, %s)", (version, time.time()))
            current = version
    return current


@asynccontextmanager
async def open_postgres_state(url: str, *, lease_s: float = LEASE_S) -> AsyncIterator[PostgresState]:
    """Open the pool, migrate, and renew outbox leases for as long as the store is open."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError("--state-url must be a postgresql:// URL")
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        url, min_size=1, max_size=POOL_MAX, open=False, kwargs={"autocommit": True}, timeout=30.0
    )
    try:
        await pool.open(wait=True, timeout=15.0)
    except Exception as exc:
        raise ConfigurationError(f"cannot connect to the state database: {type(exc).__name__}") from None
    try:
        await migrate(pool)
        outbox = PostgresOutbox(pool, lease_s=lease_s)
        async with anyio.create_task_group() as group:
            group.start_soon(outbox.heartbeat)
            try:
                yield PostgresState(pool, outbox)
            finally:
                group.cancel_scope.cancel()
    finally:
        await pool.close()
