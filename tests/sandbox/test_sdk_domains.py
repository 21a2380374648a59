"""The published Python SDK (drip-sdk 0.1.2) on entitlements, subscriptions, the events ledger and webhook PATCH."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from drip import Drip
from drip.models import WebhookFilters
from test_sdk_compat import KEY, running_sandbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drip]:
    db_path: Path = tmp_path_factory.mktemp("sdk-domains") / "sandbox.db"
    with running_sandbox(db_path) as root:
        client = Drip(api_key=KEY, base_url=f"{root}/v1", resilience=False, timeout=10)
        yield client
        client.close()


def test_sdk_entitlement_plans_rules_assignment_and_checks(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-ent-1")
    plan = drip.create_entitlement_plan("Pro", "sdk-pro", description="two searches a day")
    assert plan.slug == "sdk-pro"
    assert plan.is_active
    rule = drip.add_entitlement_rule(plan.id, "search", "COUNT", "DAILY", 2)
    assert (rule.plan_id, rule.limit_value) == (plan.id, 2)
    assert [r.id for r in drip.list_entitlement_rules(plan.id)] == [rule.id]
    assert plan.id in [p.id for p in drip.list_entitlement_plans()]
    assert drip.update_entitlement_plan(plan.id, name="Pro+").name == "Pro+"
    assert drip.get_entitlement_plan(plan.id).name == "Pro+"
    assert drip.update_entitlement_rule(rule.id, limitValue=3).limit_value == 3

    assigned = drip.assign_customer_entitlement(customer.id, plan.id)
    assert assigned.plan_slug == "sdk-pro"
    checks = [drip.check_entitlement(customer.id, "search") for _ in range(4)]
    assert [c.allowed for c in checks] == [True, True, True, False]
    assert checks[0].remaining == 2
    assert checks[3].reason
    assert drip.get_customer_entitlement(customer.id).usage["search"]["used"] == 3

    extra = drip.add_entitlement_rule(plan.id, "export", "AMOUNT", "MONTHLY", 1, unlimited=True)
    unlimited = drip.check_entitlement(customer.id, "export", quantity=50)
    assert (unlimited.allowed, unlimited.remaining, unlimited.limit) == (True, -1, -1)
    drip.delete_entitlement_rule(extra.id)
    drip.delete_entitlement_plan(plan.id)
    assert drip.get_entitlement_plan(plan.id).is_active is False


def test_sdk_subscription_lifecycle(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-sub-1")
    sub = drip.create_subscription(customer.id, "Pro", "MONTHLY", 29.99, trial_days=7, metadata={"a": 1})
    assert sub.status == "TRIALING"
    assert sub.price_usdc == "29.990000"
    assert sub.trial_end is not None
    assert drip.update_subscription(sub.id, name="Pro 2", price_usdc=10).price_usdc == "10.000000"
    later = drip.cancel_subscription(sub.id)
    assert later.cancel_at_period_end is True
    assert later.status == "TRIALING"
    active = drip.create_subscription(customer.id, "Daily", "DAILY", 1)
    paused = drip.pause_subscription(active.id, resume_date="2999-01-01T00:00:00Z")
    assert paused.status == "PAUSED"
    assert paused.resumes_at == "2999-01-01T00:00:00.000Z"
    assert drip.resume_subscription(active.id).status == "ACTIVE"
    assert drip.cancel_subscription(active.id, immediate=True).status == "CANCELLED"
    listed = drip.list_subscriptions(customer_id=customer.id)
    assert listed.count == 2
    assert drip.get_subscription(active.id).cancelled_at is not None


def test_sdk_events_ledger_and_trace(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-evt-1")
    drip.track_usage(customer_id=customer.id, meter="tokens", quantity=7, idempotency_key="sdk-evt-usage")
    listed = drip.list_events(customer_id=customer.id)
    assert [e.event_type for e in listed.data] == ["USAGE"]
    assert listed.pagination is not None
    assert listed.pagination["total"] == 1
    event = drip.get_event(listed.data[0].id)
    assert event.customer_id == customer.id
    trace = drip.get_event_trace(event.id)
    assert trace.ancestors == []
    assert trace.retry_chain is not None


def test_sdk_update_webhook(drip: Drip) -> None:
    created = drip.create_webhook("http://127.0.0.1:9/hook", ["charge.succeeded"], description="one")
    updated = drip.update_webhook(
        created.id, events=["*"], is_active=False, filters=WebhookFilters(usage_types=["tokens"])
    )
    assert updated.events == ["*"]
    assert updated.is_active is False
    assert updated.filters is not None
    assert updated.filters.usage_types == ["tokens"]
    assert drip.update_webhook(created.id, filters=None).filters is None
