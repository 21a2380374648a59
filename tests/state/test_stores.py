"""The state stores' guarantees, on a real PostgreSQL (and SQLite where it applies): atomic budgets, single-use
nonces, versioned migrations, outbox claims that skip locked rows and die with their holder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from drip_mcp.keys import ApiKey
from drip_mcp.state import (
    BudgetExceeded,
    KeySealer,
    SqliteState,
    StateStore,
    acting_as,
    tenant_of,
)
from drip_mcp.state.base import LEDGER_PRUNE_EVERY
from drip_mcp.state.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from drip_mcp.state.postgres import PostgresOutbox, open_postgres_state

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if kind == "sqlite":
        store = SqliteState(tmp_path / "state.db")
        try:
            yield store
        finally:
            store.close()
    else:
        async with open_postgres_state(request.getfixturevalue("postgres_url")) as shared:
            yield shared


BACKENDS = pytest.mark.parametrize("kind", ["sqlite", "postgresql"])


@BACKENDS
async def test_concurrent_reservations_never_pass_the_budget(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    granted: list[bool] = []

    async def try_reserve(store: StateStore) -> None:
        try:
            await store.reserve("tenant-a", Decimal("0.001"), Decimal("0.010"))
        except BudgetExceeded:
            granted.append(False)
        else:
            granted.append(True)

    async with open_store(kind, tmp_path, request) as one, open_store(kind, tmp_path, request) as two:
        async with anyio.create_task_group() as group:
            for i in range(40):
                group.start_soon(try_reserve, one if i % 2 else two)
        other = await one.budget_totals("tenant-b")
        totals = await two.budget_totals("tenant-a")

    assert granted.count(True) == 10
    assert totals == (Decimal(0), Decimal("0.010"))
    assert other == (Decimal(0), Decimal(0))


@BACKENDS
async def test_a_ledger_reads_its_newest_entries_and_prunes_the_rest_in_bounded_steps(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    scope, other = f"ledger-{uuid.uuid4().hex}", f"ledger-{uuid.uuid4().hex}"
    async with open_store(kind, tmp_path, request) as store:
        for i in range(3 * LEDGER_PRUNE_EVERY):
            await store.add_ledger_entry(scope, {"n": i}, keep=5)
        await store.add_ledger_entry(other, {"n": -1}, keep=5)
        newest = await store.ledger_entries(scope, last=5)
        everything = await store.ledger_entries(scope, last=10**6)
        others = await store.ledger_entries(other, last=5)
    assert [e["n"] for e in newest] == list(range(3 * LEDGER_PRUNE_EVERY - 5, 3 * LEDGER_PRUNE_EVERY))
    assert len(everything) <= 5 + LEDGER_PRUNE_EVERY  # pruned every LEDGER_PRUNE_EVERY-th row, not every row
    assert [e["n"] for e in everything] == list(range(3 * LEDGER_PRUNE_EVERY - len(everything), 3 * LEDGER_PRUNE_EVERY))
    assert others == [{"n": -1}]


@BACKENDS
async def test_a_nonce_is_accepted_once_across_stores_sharing_the_state(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with open_store(kind, tmp_path, request) as one, open_store(kind, tmp_path, request) as two:
        results = [await one.use_nonce("n1", 2e9, 1e9), await two.use_nonce("n1", 2e9, 1e9)]
        same_secret = await one.shared_secret("confirm") == await two.shared_secret("confirm")
    assert results == [True, False]
    assert same_secret


@BACKENDS
async def test_migrations_are_versioned_and_applied_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with open_store(kind, tmp_path, request) as first:
        version = await first.schema_version()
    async with open_store(kind, tmp_path, request) as again:
        assert await again.schema_version() == version
    assert version == len(SQLITE_MIGRATIONS if kind == "sqlite" else POSTGRES_MIGRATIONS)


async def test_postgres_claims_skip_rows_another_holder_has(postgres_url: str) -> None:
    async with open_postgres_state(postgres_url) as state:
        outbox = state.outbox
        assert isinstance(outbox, PostgresOutbox)
        other = PostgresOutbox(outbox._pool, owner="other-host:1:x")
        ids = [
            await outbox.put(
                scope="s",
                tenant="t",
                endpoint="track_usage",
                method="POST",
                path="/usage",
                body=b"{}",
                idempotency_key=f"k{i}",
            )
            for i in range(3)
        ]
        for entry_id in ids:
            await outbox.release(entry_id)
        mine, theirs = await outbox.claim("s", limit=2), await other.claim("s", limit=5)
    assert [r.id for r in mine] == ids[:2]
    assert [r.id for r in theirs] == ids[2:]


async def test_postgres_claim_of_a_dead_holder_lapses_and_a_live_holder_keeps_its_own(postgres_url: str) -> None:
    clock = [1_000.0]
    async with open_postgres_state(postgres_url) as state:
        pool = state.outbox._pool  # type: ignore[union-attr]
        dead = PostgresOutbox(pool, owner="dead:1:a", lease_s=10, clock=lambda: clock[0])
        live = PostgresOutbox(pool, owner="live:2:b", lease_s=10, clock=lambda: clock[0])
        for name, holder in (("d", dead), ("l", live)):
            await holder.put(
                scope="s",
                tenant="t",
                endpoint="track_usage",
                method="POST",
                path="/usage",
                body=b"{}",
                idempotency_key=name,
            )
        clock[0] += 6
        await live.renew_leases()  # the live holder's heartbeat; the dead one is silent
        clock[0] += 6
        taken = await PostgresOutbox(pool, owner="peer:3:c", lease_s=10, clock=lambda: clock[0]).claim("s")
    assert [r.idempotency_key for r in taken] == ["d"]


def test_sealed_tenant_keys_open_only_for_their_tenant_and_operator_key() -> None:
    sealer = KeySealer("operator-passphrase")
    sealed = sealer.seal("fp-a", "sk_test_tenantA")
    assert sealer.open("fp-a", sealed) == "sk_test_tenantA"
    assert sealer.open("fp-b", sealed) is None
    assert KeySealer("another-key").open("fp-a", sealed) is None
    assert b"sk_test_tenantA" not in sealed


async def test_state_tables_live_in_the_database_named_by_the_url(postgres_url: str) -> None:
    async with open_postgres_state(postgres_url):
        pass
    with psycopg.connect(postgres_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables >= {"ledger", "budgets", "nonces", "shared_secrets", "secret_files", "tenant_keys", "outbox"}


def test_the_tenant_is_the_key_fingerprint_unless_a_subject_is_set_for_the_request() -> None:
    key = ApiKey("sk_test_tenantRule0001")
    assert tenant_of(key) == key.fingerprint
    with acting_as("user-42"):
        assert tenant_of(key) == "sub:user-42"
        with acting_as(None):  # no subject: the enclosing one stays
            assert tenant_of(key) == "sub:user-42"
    assert tenant_of(key) == key.fingerprint


async def _keyed_rows(outbox: Any, scope: str) -> None:
    keys = [("bat_a-0", "t1"), ("bat_a-1", "t1"), ("bat_a-2", "t2"), ("bat_ab-0", "t1"), ("bat_%-0", "t1")]
    for key, tenant in keys:
        entry = await outbox.put(
            scope=scope,
            tenant=tenant,
            endpoint="track_usage",
            method="POST",
            path="/usage",
            body=b"{}",
            idempotency_key=key,
        )
        if key == "bat_a-1":
            await outbox.mark_sent(entry)
        else:
            await outbox.release(entry)


@pytest.mark.parametrize("kind", ["file", "postgres"])
async def test_rows_by_key_prefix_are_one_batchs_exactly_and_only_the_tenants(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from drip_mcp.api.durable import LocalOutbox
    from drip_mcp.api.outbox import Outbox

    scope = f"scope-{uuid.uuid4().hex}"
    if kind == "file":
        with Outbox(tmp_path / "outbox.db") as file:
            outbox: Any = LocalOutbox(file)
            await _keyed_rows(outbox, scope)
            batch = await outbox.with_key_prefix(scope, "bat_a-")
            literal = await outbox.with_key_prefix(scope, "bat_%-")
        assert [(r.idempotency_key, r.status) for r in batch] == [
            ("bat_a-0", "pending"),
            ("bat_a-1", "sent"),
            ("bat_a-2", "pending"),  # the file keeps no tenant column: its rows are scoped by key already
        ]
    else:
        async with open_postgres_state(request.getfixturevalue("postgres_url")) as state:
            outbox = state.outbox
            await _keyed_rows(outbox, scope)
            batch = await outbox.with_key_prefix(scope, "bat_a-", tenant="t1")
            literal = await outbox.with_key_prefix(scope, "bat_%-", tenant="t1")
        assert [(r.idempotency_key, r.status) for r in batch] == [("bat_a-0", "pending"), ("bat_a-1", "sent")]
    assert [r.idempotency_key for r in literal] == ["bat_%-0"]  # a prefix, not a LIKE pattern
