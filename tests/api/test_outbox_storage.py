"""The outbox's storage under damage and failure: corrupt or emptied files, file modes, full disks.

Every failure here is a real SQLite one: a file overwritten on disk, ``PRAGMA max_page_count``
(a real ``SQLITE_FULL``) and ``PRAGMA query_only`` (a real ``SQLITE_READONLY``; tests run as
root, which ignores file modes).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from server_fixtures import result_payload

from drip_mcp.api import retrying
from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import Drainer, OutboxSender
from drip_mcp.api.outbox import Outbox, outbox_scope, recorded_marker
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.cli import main
from drip_mcp.errors import OutboxCorruptError, StorageUnavailableError
from drip_mcp.keys import ApiKey
from drip_mcp.runtime import open_client
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings

PK = "pk_test_storagesuite00001"
BASE = "http://sandbox.local/v1"
PAGE = 4096


@pytest.fixture(autouse=True)
def _no_sleep() -> Iterator[None]:
    retrying.set_testing(True)
    yield
    retrying.set_testing(False)


def _fill(path: Path, rows: int) -> None:
    with Outbox(path) as box:
        for i in range(rows):
            body = json.dumps({"customerId": "cus_1", "note": f"row-{i:04d}-" + "x" * 120}).encode()
            entry = box.put(
                scope="s", endpoint="track_usage", method="POST", path="/u", body=body, idempotency_key=f"k{i}"
            )
            box.release(entry)


def _overwrite_page(path: Path, number: int) -> None:
    with path.open("r+b") as fh:
        fh.seek((number - 1) * PAGE)
        fh.write(b"\xa5" * PAGE)


def _page_holding(path: Path, needle: bytes) -> int:
    return path.read_bytes().index(needle) // PAGE + 1


def _server(tmp_path: Path, outbox: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path / "state")
    args = [
        sys.executable,
        "-m",
        "drip_mcp",
        "--sandbox",
        "--sandbox-db",
        str(tmp_path / "sb.db"),
        "--outbox",
        str(outbox),
    ]
    return subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


# --- 1. damaged and emptied files -----------------------------------------------------------------


def test_an_outbox_with_an_overwritten_page_is_refused_at_open_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 50)
    _overwrite_page(path, 2)
    before = path.read_bytes()
    with pytest.raises(OutboxCorruptError) as caught:
        Outbox(path)
    assert caught.value.path == str(path)
    assert caught.value.code == "OUTBOX_CORRUPT"
    assert path.read_bytes() == before


def test_outbox_status_on_a_damaged_file_is_one_line_naming_it_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 50)
    _overwrite_page(path, 2)
    assert main(["outbox", "--outbox", str(path), "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err
    assert "drip-mcp outbox salvage" in err


def test_a_garbage_outbox_file_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(os.urandom(3 * PAGE))
    assert main(["outbox", "--outbox", str(path), "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err


def test_the_server_refuses_to_start_on_a_damaged_outbox_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 50)
    _overwrite_page(path, 2)
    done = _server(tmp_path, path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(path) in done.stderr


def test_a_zero_length_outbox_that_held_rows_is_refused_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 3)
    assert recorded_marker(path).exists()
    path.write_bytes(b"")
    with pytest.raises(OutboxCorruptError) as caught:
        Outbox(path)
    assert caught.value.path == str(path)
    assert path.stat().st_size == 0
    done = _server(tmp_path, path)
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr
    assert path.stat().st_size == 0


def test_a_zero_length_outbox_that_never_held_rows_opens_as_new(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"")
    with Outbox(path) as box:
        assert box.counts().pending == 0


def test_an_older_outbox_with_rows_gets_its_marker_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 2)
    recorded_marker(path).unlink()
    Outbox(path).close()
    assert recorded_marker(path).exists()


def test_salvage_copies_the_readable_rows_into_a_fresh_outbox_and_counts_the_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.db"
    _fill(path, 300)
    _overwrite_page(path, _page_holding(path, b"row-0150-"))  # a page of the table itself
    assert main(["outbox", "--outbox", str(path), "salvage"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 < report["recovered"] < 300
    assert report["recovered"] + report["lost"] == 300
    assert Path(report["damaged_copy"]).exists()
    with Outbox(path) as fresh:  # opens cleanly where the damaged file was
        assert fresh.counts().pending == report["recovered"]
        assert all(e.lease_owner is None for e in fresh.entries(limit=1000))
    assert main(["outbox", "--outbox", str(path), "status"]) == 0


def test_salvage_to_an_output_path_leaves_the_damaged_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, output = tmp_path / "outbox.db", tmp_path / "rescued.db"
    _fill(path, 40)
    path.write_bytes(b"")
    before = path.read_bytes()
    assert main(["outbox", "--outbox", str(path), "salvage", "--output", str(output)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"path": str(path), "output": str(output), "recovered": 0, "lost": None, "damaged_copy": None}
    assert path.read_bytes() == before
    with Outbox(output) as fresh:
        assert fresh.counts().pending == 0


@pytest.mark.anyio
async def test_the_drainer_survives_a_storage_error_logs_one_line_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Sandbox(SandboxConfig(db_path=tmp_path / "sandbox.db")) as sandbox:
        outbox = Outbox(tmp_path / "outbox.db")
        scope = outbox_scope(BASE, ApiKey(PK))
        client = DripClient(
            ApiKey(PK), base_url=BASE, transport=sandbox.transport(), durable=OutboxSender(outbox, scope)
        )
        body = json.dumps({"customerId": "cus_x", "usageType": "tokens", "quantity": 1, "idempotencyKey": "d1"})
        entry = outbox.put(
            scope=scope,
            endpoint="track_usage",
            method="POST",
            path="/usage/internal",
            body=body.encode(),
            idempotency_key="d1",
        )
        outbox.release(entry)
        outbox._conn.execute("PRAGMA query_only = ON")  # every write now fails with SQLITE_READONLY
        drainer = Drainer(client, idle_s=0.01)
        with caplog.at_level(logging.WARNING, logger="drip_mcp.api.durable"):
            async with client, anyio.create_task_group() as tg:
                tg.start_soon(drainer.run)
                with anyio.fail_after(5):
                    while not caplog.records:  # noqa: ASYNC110 - the drainer's only sign of life is its log
                        await anyio.sleep(0.001)
                outbox._conn.execute("PRAGMA query_only = OFF")
                drainer.wake()
                with anyio.fail_after(5):
                    while (row := outbox.get(entry)) is not None and row.status == "pending":  # noqa: ASYNC110
                        await anyio.sleep(0.001)
                tg.cancel_scope.cancel()
        record = caplog.records[0]
        assert "storage error" in record.getMessage()
        assert str(outbox.path) in record.getMessage()
        assert record.exc_info is None  # one line, no traceback
        row = outbox.get(entry)
        assert row is not None
        assert row.status != "pending"  # delivered (or settled) after it recovered
        outbox.close()


# --- 2. file modes --------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def _loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.anyio
@pytest.mark.usefixtures("_loose_umask")
async def test_state_dir_is_0700_and_every_database_file_0600_even_when_they_existed_open(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as systemd's StateDirectory= leaves it
    Outbox(state / "outbox.db").close()
    (state / "outbox.db").chmod(0o644)  # a file from an older release
    settings = Settings.load({"DRIP_API_KEY": PK, "DRIP_MCP_STATE_DIR": str(state)}, sandbox=True, require_key=False)
    async with open_client(settings, drain=False) as client:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any outcome: the point is the write landing on disk
            await client.track_usage(customer_id="cus_nobody", meter="tokens", quantity=1, durable=True)
        files = sorted(p.name for p in state.iterdir() if p.is_file())
        assert {"outbox.db", "outbox.db-wal", "outbox.db-shm", "sandbox.db", "sandbox.db-wal", "sandbox.db-shm"} <= set(
            files
        )
        assert _mode(state) == 0o700
        assert {name: _mode(state / name) for name in files} == dict.fromkeys(files, 0o600)


@pytest.mark.usefixtures("_loose_umask")
def test_leftover_wal_and_shm_files_are_made_0600(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).write_bytes(b"")
        path.with_name(path.name + suffix).chmod(0o644)
    with Outbox(path):
        assert _mode(path) == 0o600
        assert _mode(path.with_name("outbox.db-wal")) == 0o600
        assert _mode(path.with_name("outbox.db-shm")) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")
def test_a_state_dir_of_another_user_stops_the_server_with_one_line_and_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 12345, 12345)
    done = _server(tmp_path, state / "outbox.db")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(state) in done.stderr
    assert "another user" in done.stderr


# --- 3. a full or read-only disk on a durable write ------------------------------------------------


@asynccontextmanager
async def _harness(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Outbox, Client, str]]:
    async with Sandbox(SandboxConfig(db_path=tmp_path / "sandbox.db")) as sandbox:
        customer = sandbox.store.create_customer(
            external_customer_id="agent-user", onchain_address=None, email=None, is_internal=False, metadata=None
        )["id"]
        outbox = Outbox(tmp_path / "outbox.db")
        client = DripClient(
            ApiKey(PK),
            base_url=BASE,
            retry=RetryPolicy(max_retries=1),
            transport=sandbox.transport(),
            durable=OutboxSender(outbox, outbox_scope(BASE, ApiKey(PK))),
        )
        try:
            async with client, Client(build_server(Settings.load({"DRIP_API_KEY": PK}), client)) as mcp:
                yield sandbox, outbox, mcp, customer
        finally:
            outbox.close()


def _make_full(outbox: Outbox) -> None:
    """Cap the file at its current size, then fill what is left: every bigger write gets SQLITE_FULL."""
    outbox._conn.execute("PRAGMA max_page_count = 1")  # clamps to the current page count
    with pytest.raises(StorageUnavailableError) as caught:  # noqa: PT012 - fill until the first refusal
        for i in range(10_000):
            outbox.put(scope="filler", endpoint="e", method="POST", path="/", body=b"{}", idempotency_key=f"f{i}")
    assert caught.value.reason == "SQLITE_FULL"


def _make_read_only(outbox: Outbox) -> None:
    outbox._conn.execute("PRAGMA query_only = ON")


def _usage_count(sandbox: Sandbox) -> int:
    count: int = sandbox.store._conn.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0]
    return count


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("break_storage", "reason"), [(_make_full, "SQLITE_FULL"), (_make_read_only, "SQLITE_READONLY")]
)
async def test_track_usage_on_broken_storage_is_a_retryable_error_with_its_idempotency_key(
    tmp_path: Path, break_storage: Any, reason: str
) -> None:
    async with _harness(tmp_path) as (sandbox, outbox, mcp, customer):
        before_rows, before_usage = outbox.counts(), _usage_count(sandbox)
        break_storage(outbox)
        args = {"customer_id": customer, "meter": "tokens", "quantity": 3}
        result = await mcp.call_tool("drip_track_usage", args)
        assert result.is_error
        error = result_payload(result)["error"]
        assert error["code"] == "STORAGE_UNAVAILABLE"
        assert error["retryable"] is True
        assert error["reason"] == reason
        key = error["idempotency_key"]
        assert isinstance(key, str)
        assert key
        # Not acknowledged, and nothing was sent or stored for it.
        assert _usage_count(sandbox) == before_usage
        assert [e for e in outbox.entries(limit=10_000) if e.idempotency_key == key] == []
        if break_storage is _make_read_only:
            assert outbox.counts() == before_rows
        # Once the storage is back, the agent's retry with that key records it exactly once.
        outbox._conn.execute("PRAGMA query_only = OFF")
        outbox._conn.execute("PRAGMA max_page_count = 1073741823")
        retry = await mcp.call_tool("drip_track_usage", {**args, "idempotency_key": key})
        assert not retry.is_error, retry.content
        assert result_payload(retry)["status"] == "recorded"
        assert result_payload(retry)["idempotency_key"] == key
        assert _usage_count(sandbox) == before_usage + 1
