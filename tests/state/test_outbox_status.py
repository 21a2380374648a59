"""``drip-mcp outbox status --by-tenant`` and ``list --tenant``: per-tenant counts, waiting tenants by fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from drip_mcp.api.outbox import Outbox
from drip_mcp.cli import main
from drip_mcp.state.postgres import PostgresOutbox, open_postgres_state


def _put(box: Outbox, scope: str, key: str) -> int:
    return box.put(
        scope=scope, endpoint="track_usage", method="POST", path="/usage/internal", body=b"{}", idempotency_key=key
    )


def test_status_by_tenant_names_the_waiting_tenants_of_the_outbox_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        _put(box, "https://api.test/v1|fpA", "a-1")
        box.mark_sent(_put(box, "https://api.test/v1|fpB", "b-1"))
    assert main(["outbox", "--outbox", str(path), "status", "--by-tenant"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main(["outbox", "--outbox", str(path), "list", "--tenant", "fpB"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert status["tenants"] == {
        "fpA": {"pending": 1, "dead": 0, "sent": 0},
        "fpB": {"pending": 0, "dead": 0, "sent": 1},
    }
    assert status["waiting_tenants"] == ["fpA"]
    assert [(r["tenant"], r["idempotency_key"]) for r in listed] == [("fpB", "b-1")]


async def _queue_rows(url: str) -> None:
    async with open_postgres_state(url) as state:
        assert isinstance(state.outbox, PostgresOutbox)
        for n, tenant in enumerate(("fpA", "fpA", "fpB")):
            await state.outbox.put(
                scope=f"s|{tenant}",
                tenant=tenant,
                endpoint="track_usage",
                method="POST",
                path="/u",
                body=b"{}",
                idempotency_key=f"k{n}",
            )


def test_status_by_tenant_reads_the_fleets_shared_outbox(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    anyio.run(_queue_rows, postgres_url)
    assert main(["outbox", "--state-url", postgres_url, "status", "--by-tenant"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["store"], status["pending"]) == ("postgresql", 3)
    assert status["waiting_tenants"] == ["fpA", "fpB"]
    assert status["tenants"]["fpA"]["pending"] == 2
