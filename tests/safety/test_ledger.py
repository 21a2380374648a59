"""The session ledger's entries: every field survives the trip through a store, in memory or in SQLite."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from drip_mcp.safety.ledger import LedgerEntry, ProcessLedger, SessionLedger
from drip_mcp.state.sqlite import SqliteState

pytestmark = pytest.mark.anyio

ENTRY = LedgerEntry(
    kind="charge",
    customer_id="cus_1",
    meter="api_calls",
    quantity=Decimal("2.5"),
    amount_usdc=Decimal("0.0125"),
    idempotency_key="chg_1",
    outcome="charged",
)


def test_an_entrys_json_carries_every_field() -> None:
    assert set(ENTRY.to_json()) == {f.name for f in dataclasses.fields(LedgerEntry)}
    assert LedgerEntry.from_json(ENTRY.to_json()) == ENTRY


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_ledger_keeps_the_newest_entries_of_each_scope_in_its_store(kind: str, tmp_path: Path) -> None:
    store = ProcessLedger() if kind == "memory" else SqliteState(tmp_path / "state.db")
    ledger = SessionLedger(max_entries=3, store=store)
    for i in range(5):
        await ledger.add(dataclasses.replace(ENTRY, idempotency_key=f"chg_{i}"), scope="a")
    await ledger.add(ENTRY, scope="b")
    kept = await ledger.entries("a")
    other = await ledger.entries("b")
    assert [e.idempotency_key for e in kept] == ["chg_2", "chg_3", "chg_4"]
    assert other == [ENTRY]
