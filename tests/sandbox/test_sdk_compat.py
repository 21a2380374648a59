"""The published Drip Python SDK (drip-sdk 0.1.2) against a real sandbox server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from drip import Drip, verify_webhook_signature
from sdk_helpers import running_sandbox, webhook_receiver

from drip_mcp.sandbox.store import Store

pytestmark = pytest.mark.slow

KEY = "sk_test_sdkcompat01"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db_path = tmp_path_factory.mktemp("sdk") / "sandbox.db"
    with running_sandbox(db_path) as root:
        yield root, db_path


@pytest.fixture
def drip(server: tuple[str, Path]) -> Iterator[Drip]:
    client = Drip(api_key=KEY, base_url=f"{server[0]}/v1", resilience=False, timeout=10)
    yield client
    client.close()


def test_sdk_ping_customers_and_balance(drip: Drip) -> None:
    assert drip.ping()["ok"] is True
    customer = drip.create_customer(external_customer_id="sdk-user-1", metadata={"tier": "pro"})
    assert drip.get_customer(customer.id).external_customer_id == "sdk-user-1"
    assert customer.id in [c.id for c in drip.list_customers().data]
    balance = drip.get_balance(customer.id)
    assert balance.balance_usdc == "100.000000"
    assert balance.onchain_address.startswith("0x")
    assert drip.get_or_create_customer("sdk-user-1").id == customer.id


def test_sdk_track_usage_and_charge_replay(drip: Drip, server: tuple[str, Path]) -> None:
    customer = drip.create_customer(external_customer_id="sdk-user-2")
    tracked = drip.track_usage(customer_id=customer.id, meter="tokens", quantity=1500, idempotency_key="sdk-t1")
    assert tracked.usage_event_id
    assert tracked.quantity == 1500
    batch = drip.track_usage(customer_id=customer.id, meter="tokens", quantity=5, mode="batch")
    assert batch.pending_events == 0
    charged = drip.charge(customer_id=customer.id, meter="api_calls", quantity=3, idempotency_key="sdk-c1")
    assert charged.is_duplicate is False
    assert charged.charge.amount_usdc == "0.003000"
    replay = drip.charge(customer_id=customer.id, meter="api_calls", quantity=3, idempotency_key="sdk-c1")
    assert replay.is_duplicate is True
    assert replay.charge.id == charged.charge.id
    assert drip.get_balance(customer.id).balance_usdc == "99.997000"
    charge = drip.get_charge(charged.charge.id)
    assert charge.usage_event.quantity == "3"
    listed = drip.list_charges(customer_id=customer.id)
    assert [c.id for c in listed.data] == [charged.charge.id]
    store = Store(server[1])
    try:
        assert store.balance(customer.id) == Decimal("99.997")
        assert store.count_charges(customer.id) == 1
    finally:
        store.close()


def test_sdk_meters_estimates_and_checkout(drip: Drip) -> None:
    meters = {meter.meter: meter for meter in drip.list_meters().data}
    assert meters["api_calls"].unit_price_usd == "0.001"
    hypothetical = drip.estimate_from_hypothetical(items=[{"usageType": "api_calls", "quantity": 2000}])
    assert hypothetical.estimated_total_usdc == "2.000000"
    from_usage = drip.estimate_from_usage(period_start="2000-01-01T00:00:00Z", period_end="2999-01-01T00:00:00Z")
    assert from_usage.line_items
    customer = drip.create_customer(external_customer_id="sdk-buyer")
    session = drip.checkout(amount=1500, return_url="https://app.example/back", customer_id=customer.id)
    assert session.amount_usd == 15.0
    paid = httpx2.post(session.url.replace(f"/checkout/{session.id}", f"/checkout/{session.id}/pay"), timeout=10)
    assert paid.status_code == 303
    assert f"session_id={session.id}" in paid.headers["location"]
    assert drip.get_balance(customer.id).balance_usdc == "115.000000"


def test_sdk_workflow_run_lifecycle_and_record_run(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-runner")
    workflow = drip.create_workflow(name="SDK flow", slug="sdk-flow")
    assert workflow.id in [w.id for w in drip.list_workflows().data]
    run = drip.start_run(customer_id=customer.id, workflow_id=workflow.id, correlation_id="corr-1")
    assert run.status.value == "PENDING"
    event = drip.emit_event(run_id=run.id, event_type="llm.call", quantity=10, cost_units=0.2)
    assert event.is_duplicate is False
    batch = drip.emit_events_batch([{"runId": run.id, "eventType": "tool.call", "quantity": 2}])
    assert batch.created == 1
    ended = drip.end_run(run.id, status="COMPLETED")
    assert ended.event_count == 2
    details = drip.get_run(run.id)
    assert details.totals.event_count == 2
    timeline = drip.get_run_timeline(run.id)
    assert [e.event_type for e in timeline.timeline] == ["llm.call", "tool.call"]
    assert timeline.totals.event_count == 2
    recorded = drip.record_run(
        customer_id=customer.id,
        workflow="sdk_recorded-flow",
        events=[{"event_type": "step", "quantity": 1}, {"eventType": "step", "cost_units": 0.5}],
        status="COMPLETED",
    )
    assert recorded.run.workflow_name == "Sdk Recorded Flow"
    assert recorded.events.created == 2
    assert recorded.summary.startswith("✓")


def test_sdk_webhooks_and_signed_delivery(drip: Drip) -> None:
    with webhook_receiver() as (url, received):
        created = drip.create_webhook(url=url, events=["charge.succeeded"], description="compat")
        assert created.secret.startswith("whsec_")
        assert created.id in [w.id for w in drip.list_webhooks().data]
        assert drip.get_webhook(created.id).url == url
        result = drip.test_webhook(created.id)
        assert result.status == "DELIVERED"
        body, signature = received.get(timeout=10)
        assert verify_webhook_signature(body, signature, created.secret)
        rotated = drip.rotate_webhook_secret(created.id)
        assert not verify_webhook_signature(body, signature, rotated.secret)
        customer = drip.create_customer(external_customer_id="sdk-hooked")
        charged = drip.charge(customer_id=customer.id, meter="api_calls", quantity=1)
        body, signature = received.get(timeout=10)
        assert verify_webhook_signature(body, signature, rotated.secret)
        assert json.loads(body)["data"]["chargeId"] == charged.charge.id
        assert drip.delete_webhook(created.id).success is True
        assert created.id not in [w.id for w in drip.list_webhooks().data]


def test_dropped_connection_over_socket_commits_the_write(tmp_path: Path) -> None:
    db_path = tmp_path / "drops.db"
    env = {"DRIP_SANDBOX_DROP_RATE": "1"}
    headers = {"Authorization": f"Bearer {KEY}"}
    with running_sandbox(db_path, env) as root, httpx2.Client(base_url=root, headers=headers, timeout=10) as http:
        assert http.get("/health").status_code == 200
        with pytest.raises(httpx2.RemoteProtocolError):
            http.post("/v1/usage/internal", json={"externalCustomerId": "x", "idempotencyKey": "dropped"})
    store = Store(db_path)
    try:
        assert store.usage_idempotency_keys() == ["dropped"]
    finally:
        store.close()
