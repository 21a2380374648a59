"""The durable outbox: the store (persist, settle, leases, dead letters), the client hook and the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from server_fixtures import result_payload

from drip_mcp.api import retrying
from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import Drainer, OutboxSender
from drip_mcp.api.outbox import Outbox, Queued, outbox_scope
from drip_mcp.cli import main
from drip_mcp.errors import InternalServerError, NotFoundError, UnprocessableEntityError
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import Store
from drip_mcp.server import build_server
from drip_mcp.settings import SANDBOX_PUBLIC_KEY, Settings

KEY = "sk_test_outboxsuitekey0001"
OTHER_KEY = "sk_test_outboxsuitekey0002"
BASE = "https://drip.test/v1"
USAGE_OK = {"usageEventId": "ue_1", "customerId": "cus_1", "usageType": "tokens", "quantity": 5}


@pytest.fixture(autouse=True)
def _no_sleep() -> Iterator[None]:
    retrying.set_testing(True)
    yield
    retrying.set_testing(False)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _client(handler: Any, outbox: Outbox | None = None, key: str = KEY, retries: int = 1) -> DripClient:
    from drip_mcp.api.retrying import RetryPolicy

    durable = OutboxSender(outbox, outbox_scope(BASE, ApiKey(key))) if outbox is not None else None
    return DripClient(
        ApiKey(key),
        base_url=BASE,
        retry=RetryPolicy(max_retries=retries),
        transport=httpx2.MockTransport(handler),
        durable=durable,
    )


def _put(outbox: Outbox, key: str, scope: str = "s") -> int:
    body = json.dumps({"customerId": "cus_1", "idempotencyKey": key}).encode()
    entry = outbox.put(
        scope=scope, endpoint="track_usage", method="POST", path="/usage/internal", body=body, idempotency_key=key
    )
    outbox.release(entry)
    return entry


# --- the client hook ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_durable_write_is_persisted_before_it_is_sent_and_marked_sent_after(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    seen_while_sending: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        with Outbox(tmp_path / "outbox.db") as observer:  # another connection: the row is committed
            seen_while_sending.extend(f"{e.status}:{e.idempotency_key}" for e in observer.entries())
        return httpx2.Response(200, json=USAGE_OK)

    async with _client(handler, outbox) as client:
        reply = await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(5), durable=True)

    assert seen_while_sending == [f"pending:{reply.idempotency_key}"]
    (entry,) = outbox.entries()
    assert (entry.status, entry.idempotency_key, entry.endpoint, entry.path) == (
        "sent",
        reply.idempotency_key,
        "track_usage",
        "/usage/internal",
    )
    assert json.loads(entry.body)["idempotencyKey"] == reply.idempotency_key
    assert entry.lease_owner is None


@pytest.mark.anyio
async def test_non_durable_write_leaves_no_row(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    async with _client(lambda r: httpx2.Response(200, json=USAGE_OK), outbox) as client:
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(5))
    assert outbox.counts().pending + outbox.counts().sent == 0


@pytest.mark.anyio
async def test_retryable_failure_outlasting_retries_raises_queued_and_keeps_the_row_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(503, json={"error": "down", "code": "SERVICE_UNAVAILABLE"})

    async with _client(handler, outbox, retries=2) as client:
        with pytest.raises(Queued) as caught:
            await client.track_usage(
                customer_id="cus_1", meter="tokens", quantity=Decimal(5), idempotency_key="k-1", durable=True
            )
    assert calls == 3
    assert caught.value.idempotency_key == "k-1"
    assert isinstance(caught.value.reason, InternalServerError)
    (entry,) = outbox.entries()
    assert (entry.status, entry.attempts, entry.last_status, entry.lease_owner) == ("pending", 1, 503, None)
    assert entry.last_error_code == "SERVICE_UNAVAILABLE"


@pytest.mark.anyio
async def test_network_failure_is_queued_too(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    async with _client(handler, outbox) as client:
        with pytest.raises(Queued) as caught:
            await client.emit_event(run_id="run_1", event_type="llm_call", durable=True)
    assert caught.value.reason.code == "NETWORK_ERROR"
    assert outbox.counts().pending == 1


@pytest.mark.anyio
async def test_4xx_is_raised_and_the_row_kept_as_a_dead_letter(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    reply = {"error": "quantity must be positive", "code": "VALIDATION_ERROR"}
    async with _client(lambda r: httpx2.Response(422, json=reply), outbox) as client:
        with pytest.raises(UnprocessableEntityError):
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(5), durable=True)
    (entry,) = outbox.entries(status="dead")
    assert (entry.last_status, entry.last_error_code) == (422, "VALIDATION_ERROR")
    assert outbox.counts() == outbox.counts().__class__(pending=0, dead=1, sent=0)


@pytest.mark.anyio
async def test_cancelled_send_releases_the_lease_so_a_drainer_can_take_the_row(tmp_path: Path) -> None:
    import anyio

    outbox = Outbox(tmp_path / "outbox.db")
    started = anyio.Event()

    class Hang(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            started.set()
            await anyio.sleep_forever()
            raise AssertionError

    scope = outbox_scope(BASE, ApiKey(KEY))
    client = DripClient(ApiKey(KEY), base_url=BASE, transport=Hang(), durable=OutboxSender(outbox, scope))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: client.emit_event(run_id="run_1", event_type="x", durable=True))
        with anyio.fail_after(5):
            await started.wait()
        tg.cancel_scope.cancel()
    (entry,) = outbox.entries()
    assert (entry.status, entry.lease_owner) == ("pending", None)
    assert [e.id for e in outbox.claim(scope)] == [entry.id]


@pytest.mark.anyio
async def test_a_delivery_mark_rides_the_next_transaction_and_is_written_before_any_read(tmp_path: Path) -> None:
    """One commit per write: the `sent` mark of write n is written with write n+1's row (or before a read)."""
    path = tmp_path / "outbox.db"
    outbox, other = Outbox(path), Outbox(path)  # `other`: another process of the same file

    async def ok(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=USAGE_OK)

    async with _client(ok, outbox) as client:
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(1), durable=True)
        seen_before = other.counts()  # the mark is not written yet: pending, and leased to `outbox`
        claimable = other.claim(outbox_scope(BASE, ApiKey(KEY)), force=True)
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(2), durable=True)
        seen_between = other.counts()  # written with the second row; the second row's mark waits in turn
        own = outbox.counts()  # a read writes the waiting marks first
        seen_after = other.counts()
    assert (seen_before.pending, seen_before.sent) == (1, 0)
    assert claimable == []
    assert (seen_between.pending, seen_between.sent) == (1, 1)
    assert (own.pending, own.sent) == (0, 2)
    assert (seen_after.pending, seen_after.sent) == (0, 2)


def test_closing_an_outbox_writes_its_waiting_delivery_marks(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    entry = _put(outbox, "k1")
    outbox.mark_sent(entry, status=201)
    outbox.close()
    with Outbox(path) as reopened:
        assert reopened.counts() == reopened.counts().__class__(pending=0, dead=0, sent=1)


# --- the drainer ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_drainer_delivers_queued_rows_once_upstream_recovers_and_buries_refused_ones(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    up = False
    sent: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        if not up:
            return httpx2.Response(502)
        body = json.loads(request.content)
        sent.append(body["idempotencyKey"])
        if body["customerId"] == "gone":
            return httpx2.Response(404, json={"error": "no such customer", "code": "NOT_FOUND"})
        return httpx2.Response(200, json=USAGE_OK)

    async with _client(handler, outbox, retries=0) as client:
        for customer in ("cus_1", "cus_2", "gone"):
            with pytest.raises(Queued):
                await client.track_usage(customer_id=customer, meter="tokens", quantity=Decimal(1), durable=True)
        up = True
        results = await Drainer(client).flush()
    assert sorted(d.outcome for d in results) == ["dead", "sent", "sent"]
    assert [type(d.error) for d in results if d.outcome == "dead"] == [NotFoundError]
    assert len(sent) == len(set(sent)) == 3
    assert outbox.counts() == outbox.counts().__class__(pending=0, dead=1, sent=2)


@pytest.mark.anyio
async def test_drainer_only_sends_rows_of_its_own_key_and_api(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    down = _client(lambda r: httpx2.Response(500), outbox, retries=0)
    with pytest.raises(Queued):
        await down.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal(1), durable=True)
    await down.aclose()
    hits: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        hits.append(request.headers["Authorization"])
        return httpx2.Response(200, json=USAGE_OK)

    async with _client(handler, outbox, key=OTHER_KEY) as other:
        assert await Drainer(other).flush() == []
    async with _client(handler, outbox) as same:
        assert [d.outcome for d in await Drainer(same).flush()] == ["sent"]
    assert hits == [f"Bearer {KEY}"]


@pytest.mark.anyio
async def test_replay_refuses_a_stored_path_that_does_not_match_the_endpoint(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    async with _client(lambda r: httpx2.Response(200, json={}), outbox) as client:
        scope = outbox_scope(BASE, ApiKey(KEY))
        outbox.put(
            scope=scope,
            endpoint="end_run",
            method="PATCH",
            path="/webhooks/x/../y",
            body=b'{"idempotencyKey":"k"}',
            idempotency_key="k",
        )
        outbox.release(1)
        (delivery,) = await Drainer(client).flush()
    assert delivery.outcome == "dead"
    assert outbox.counts().dead == 1


# --- the store: leases, recovery, operator actions, secrecy -----------------------------------


def test_a_claimed_row_is_invisible_to_a_second_outbox_until_its_lease_expires(tmp_path: Path) -> None:
    clock = Clock()
    a = Outbox(tmp_path / "o.db", clock=clock, lease_s=60)
    b = Outbox(tmp_path / "o.db", clock=clock, lease_s=60)
    ids = [_put(a, f"k{i}") for i in range(3)]
    assert [e.id for e in a.claim("s")] == ids
    assert b.claim("s") == []
    clock.now += 61
    assert [e.id for e in b.claim("s")] == ids
    assert {e.lease_owner for e in b.entries()} == {b.owner}


def test_two_outboxes_claiming_concurrently_never_share_a_row(tmp_path: Path) -> None:
    setup = Outbox(tmp_path / "o.db")
    total = 400
    for i in range(total):
        _put(setup, f"k{i}")
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    # Both instances claim in every round, at the same moment (the barrier), until nothing is left.
    rounds = total // (2 * 7) + 2
    barrier = threading.Barrier(2, timeout=30)

    def worker(name: str) -> None:
        box = Outbox(tmp_path / "o.db")
        for _ in range(rounds):
            barrier.wait()
            claimed[name].extend(r.id for r in box.claim("s", limit=7))
        box.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == sorted(e.id for e in setup.entries(limit=total))
    assert claimed["a"]
    assert claimed["b"]


def test_backoff_keeps_a_deferred_row_from_being_claimed_until_due(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", clock=clock)
    entry = _put(box, "k")
    (claimed,) = box.claim("s")
    due = box.defer(claimed.id, InternalServerError("down", status=500))
    assert due > clock.now
    assert box.claim("s") == []
    assert [e.id for e in box.claim("s", force=True)] == [entry]


def test_leases_of_a_dead_process_on_this_host_are_recovered(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    gone = Outbox(tmp_path / "o.db", owner=f"{host}:{dead.pid}:abcd")
    alive = Outbox(tmp_path / "o.db", owner=f"{host}:{os.getpid()}:efgh")
    gone_row = gone.put(
        scope="s", endpoint="emit_event", method="POST", path="/run-events", body=b"{}", idempotency_key="a"
    )
    alive.put(scope="s", endpoint="emit_event", method="POST", path="/run-events", body=b"{}", idempotency_key="b")
    third = Outbox(tmp_path / "o.db")
    assert third.claim("s") == []
    assert third.recover_abandoned() == 1
    assert [e.id for e in third.claim("s")] == [gone_row]


def test_putting_the_same_key_twice_reuses_the_row(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    first = _put(box, "same")
    assert _put(box, "same") == first
    assert box.counts().pending == 1


def test_retry_dead_moves_dead_letters_back_to_pending_and_counts_follow(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    sent, dead, pending = (_put(box, k) for k in ("a", "b", "c"))
    box.mark_sent(sent, status=200)
    box.bury(dead, UnprocessableEntityError("bad", status=422))
    assert box.counts() == box.counts().__class__(pending=1, dead=1, sent=1)
    assert box.retry_dead() == 1
    assert box.counts() == box.counts().__class__(pending=2, dead=0, sent=1)
    assert {e.id for e in box.claim("s")} == {dead, pending}


def test_sent_rows_are_pruned_after_the_retention_period(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", clock=clock)
    box.mark_sent(_put(box, "old"))
    clock.now += 3600
    box.mark_sent(_put(box, "new"))
    assert box.prune(older_than_s=1800) == 1
    assert [e.idempotency_key for e in box.entries()] == ["new"]


def _read_outbox_files(directory: Path) -> bytes:
    """The database, its WAL and shared-memory files, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith("outbox.db"))


@pytest.mark.anyio
async def test_outbox_files_never_contain_the_api_key(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    fail = True

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503) if fail else httpx2.Response(200, json=USAGE_OK)

    async with _client(handler, outbox, retries=0) as client:
        with pytest.raises(Queued):
            await client.track_usage(
                customer_id="cus_1", meter="tokens", quantity=Decimal(1), metadata={"model": "m"}, durable=True
            )
        fail = False
        await Drainer(client).flush()
    content = _read_outbox_files(tmp_path)
    assert b"cus_1" in content  # the body really is in there...
    assert KEY.encode() not in content  # ...the key is not
    assert KEY.split("_")[-1].encode() not in content
    assert ApiKey(KEY).fingerprint not in KEY


# --- the server and the CLI -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_ping_reports_outbox_pending_and_dead_counts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    mine = outbox_scope(BASE, ApiKey(KEY))
    _put(outbox, "p", scope=mine)
    outbox.bury(_put(outbox, "d", scope=mine), NotFoundError("gone", status=404))
    _put(outbox, "another tenant's row", scope=outbox_scope(BASE, ApiKey(OTHER_KEY)))
    client = _client(lambda r: httpx2.Response(200, json={"status": "healthy"}), outbox)
    settings = Settings.load({"DRIP_API_KEY": KEY})
    async with Client(build_server(settings, client)) as mcp:
        result = await mcp.call_tool("drip_ping", {})
    assert result.structured_content is not None
    assert (result_payload(result)["outbox_pending"], result_payload(result)["outbox_dead"]) == (1, 1)
    assert any("outbox list --dead" in w for w in result_payload(result)["warnings"])


def test_cli_status_list_and_retry_dead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        _put(box, "pending-1")
        box.bury(_put(box, "dead-1"), UnprocessableEntityError("bad", status=422))
    assert main(["outbox", "--outbox", str(path), "status"]) == 0
    assert json.loads(capsys.readouterr().out) | {"path": ""} == {"path": "", "pending": 1, "dead": 1, "sent": 0}
    assert main(["outbox", "--outbox", str(path), "list", "--dead"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["idempotency_key"], r["last_status"]) for r in listed] == [("dead-1", 422)]
    assert main(["outbox", "--outbox", str(path), "retry-dead"]) == 0
    assert "1 dead letter" in capsys.readouterr().out
    assert main(["outbox", "--outbox", str(path), "status"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 2


def test_cli_flush_sends_pending_rows_to_the_sandbox_and_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, path = tmp_path / "sandbox.db", tmp_path / "o.db"
    store = Store(db)
    customer = store.create_customer(
        external_customer_id="u1", onchain_address=None, email=None, is_internal=False, metadata=None
    )["id"]
    store.close()
    scope = f"sandbox:{db.resolve()}|{ApiKey(SANDBOX_PUBLIC_KEY).fingerprint}"
    body = {"customerId": customer, "usageType": "api_calls", "quantity": 2, "idempotencyKey": "flush-1"}
    with Outbox(path) as box:
        box.release(
            box.put(
                scope=scope,
                endpoint="track_usage",
                method="POST",
                path="/usage/internal",
                body=json.dumps(body).encode(),
                idempotency_key="flush-1",
            )
        )
    assert main(["outbox", "--outbox", str(path), "flush", "--sandbox", "--sandbox-db", str(db)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["idempotency_key"], line["outcome"]) == ("flush-1", "sent")
    store = Store(db)
    assert store.usage_idempotency_keys() == ["flush-1"]
    store.close()
    with Outbox(path) as box:
        assert box.counts().sent == 1
