"""Every API method of the published Python SDK (drip-sdk 0.1.2, `drip.Drip`) against a real sandbox server.

One test per SDK method, each called the way a user would (arguments per the SDK's own signature and
`drip-api.md`), against `drip-mcp sandbox` on a loopback socket. Resources a method needs (a customer, a
plan, a subscription…) are created through the SDK itself, lazily, once per module. `test_every_api_method_
is_exercised` pins the method table to what introspection of `drip.Drip` finds, so none is silently skipped.

Expected failures live in two tables below: `SDK_BUGS` (can never pass with this SDK version) and
`NOT_YET_IN_SANDBOX` (the sandbox lacks the route today). Both are strict xfails: when a route lands the
test XPASSes, which fails the run until the entry is removed.
"""

from __future__ import annotations

import inspect
import itertools
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from drip import Drip, verify_webhook_signature
from drip.errors import DripAPIError
from drip.models import CustomerStatus, SpendingCapType
from sdk_helpers import Delivery, running_sandbox, webhook_receiver

pytestmark = pytest.mark.slow

KEY = "sk_test_pysdkmethods1"

# Public members of `drip.Drip` that make no HTTP call of their own, so are not API methods.
NON_API_MEMBERS = {
    "close",  # closes the httpx client
    "config",  # property: the resolved configuration
    "resilience",  # property: the resilience manager (or None)
    "get_metrics",  # local resilience metrics, no request
    "get_health",  # local circuit-breaker/rate-limiter state, no request (`ping` is the health call)
    "generate_idempotency_key",  # static helper: sha256 of its arguments
    "verify_webhook_signature",  # static helper: HMAC check of a received webhook
}

# Methods that can never pass against a faithful sandbox because of a bug in drip-sdk 0.1.2 itself. None today:
# `provision_customer` parses the snake_case provision response as a Customer (fixed only in the unpublished
# 0.2.0); the sandbox answers with the snake_case fields *and* the customer's fields, so 0.1.2 works against it
# (README: "Where the sandbox differs from Drip").
SDK_BUGS: dict[str, str] = {}

# Methods whose sandbox route does not exist yet (determined by running against today's sandbox).
NOT_YET_IN_SANDBOX: dict[str, str] = {}

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


@dataclass
class Ctx:
    """The client, the webhook receiver, and lazily created (and then reused) resources."""

    client: Drip
    api_url: str
    hook_url: str
    hooks: queue.Queue[Delivery]
    cache: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]

    def customer_id(self) -> str:
        return str(self.once("customer", lambda: self.client.create_customer(external_customer_id=unique("py")).id))

    def new_customer_id(self) -> str:
        return self.client.create_customer(external_customer_id=unique("py")).id

    def workflow_id(self) -> str:
        return str(self.once("workflow", lambda: self.client.create_workflow(name="Py flow", slug="py-flow").id))

    def run_id(self) -> str:
        return str(
            self.once(
                "run", lambda: self.client.start_run(customer_id=self.customer_id(), workflow_id=self.workflow_id()).id
            )
        )

    def charge_id(self) -> str:
        made = self.once(
            "charge", lambda: self.client.charge(customer_id=self.customer_id(), meter="api_calls", quantity=2)
        )
        return str(made.charge.id)

    def webhook_id(self) -> str:
        return str(
            self.once("webhook", lambda: self.client.create_webhook(url=self.hook_url, events=["charge.succeeded"]).id)
        )

    def plan_id(self) -> str:
        return str(
            self.once("plan", lambda: self.client.create_entitlement_plan(name="Py plan", slug=unique("py-plan")).id)
        )

    def rule_id(self) -> str:
        def make() -> str:
            rule = self.client.add_entitlement_rule(self.plan_id(), "searches", "COUNT", "MONTHLY", 1000)
            return rule.id

        return str(self.once("rule", make))

    def entitled_customer_id(self) -> str:
        def make() -> str:
            customer_id = self.new_customer_id()
            self.rule_id()
            self.client.assign_customer_entitlement(customer_id, self.plan_id())
            return customer_id

        return str(self.once("entitled", make))

    def contract_id(self) -> str:
        return str(
            self.once(
                "contract",
                lambda: self.client.create_contract(self.customer_id(), "Py contract", "2026-01-01T00:00:00.000Z").id,
            )
        )

    def subscription_id(self) -> str:
        return str(self.once("subscription", self.new_subscription_id))

    def new_subscription_id(self) -> str:
        return self.client.create_subscription(self.customer_id(), "Py Pro", "MONTHLY", 29.0).id

    def event_id(self) -> str:
        """An execution-event id: from the ledger after a charge and a run event, else one POSTed to /v1/events.

        drip-sdk 0.1.2 has no method for `POST /events`; a ledger that lists only such events is seeded the way
        drip-api.md §5.8 records a live call (`{customerId, actionName, idempotencyKey}`).
        """

        def make() -> str:
            self.charge_id()
            self.client.emit_event(run_id=self.run_id(), event_type="llm.call", quantity=3)
            listed = self.client.list_events(customer_id=self.customer_id())
            if listed.data:
                return listed.data[0].id
            body = {"customerId": self.customer_id(), "actionName": "py.seed", "idempotencyKey": unique("py-seed")}
            headers = {"Authorization": f"Bearer {KEY}"}
            created = httpx2.post(f"{self.api_url}/events", json=body, headers=headers, timeout=10)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

        return str(self.once("event", make))


# ---------------------------------------------------------------------------------------------------------------
# One function per SDK method. Each calls the method once (plus whatever a user would do to check it).
# ---------------------------------------------------------------------------------------------------------------


def m_ping(c: Ctx) -> None:
    assert c.client.ping()["ok"] is True


def m_create_customer(c: Ctx) -> None:
    external = unique("py-create")
    customer = c.client.create_customer(external_customer_id=external, metadata={"tier": "pro"})
    assert customer.external_customer_id == external


def m_get_customer(c: Ctx) -> None:
    assert c.client.get_customer(c.customer_id()).id == c.customer_id()


def m_list_customers(c: Ctx) -> None:
    c.customer_id()
    listed = c.client.list_customers(status=CustomerStatus.ACTIVE, limit=100)
    assert c.customer_id() in [x.id for x in listed.data]


def m_get_or_create_customer(c: Ctx) -> None:
    first = c.client.get_or_create_customer(unique("py-goc"))
    assert c.client.get_or_create_customer(first.external_customer_id or "").id == first.id


def m_get_balance(c: Ctx) -> None:
    balance = c.client.get_balance(c.customer_id())
    assert balance.customer_id == c.customer_id()
    assert Decimal(balance.balance_usdc) >= 0


def m_set_customer_spending_cap(c: Ctx) -> None:
    cap = c.client.set_customer_spending_cap(c.customer_id(), SpendingCapType.DAILY_CHARGE_LIMIT, 50.0)
    assert cap.cap_type == "DAILY_CHARGE_LIMIT"
    assert Decimal(cap.limit_value) == 50


def m_get_customer_spending_caps(c: Ctx) -> None:
    customer_id = c.new_customer_id()
    cap = c.client.set_customer_spending_cap(customer_id, SpendingCapType.MONTHLY_CHARGE_LIMIT, 500.0)
    assert cap.id in [x.id for x in c.client.get_customer_spending_caps(customer_id).caps]


def m_remove_customer_spending_cap(c: Ctx) -> None:
    customer_id = c.new_customer_id()
    cap = c.client.set_customer_spending_cap(customer_id, SpendingCapType.SINGLE_CHARGE_LIMIT, 5.0, auto_block=False)
    c.client.remove_customer_spending_cap(customer_id, cap.id)
    assert cap.id not in [x.id for x in c.client.get_customer_spending_caps(customer_id).caps if x.is_active]


def m_provision_customer(c: Ctx) -> None:
    c.client.provision_customer(c.new_customer_id())


def m_sync_customer_balance(c: Ctx) -> None:
    synced = c.client.sync_customer_balance(c.customer_id())
    assert isinstance(synced, dict)
    assert synced


def m_assign_customer_entitlement(c: Ctx) -> None:
    customer_id = c.new_customer_id()
    assigned = c.client.assign_customer_entitlement(customer_id, c.plan_id(), overrides={"searches": {"limitValue": 5}})
    assert assigned.plan_id == c.plan_id()


def m_get_customer_entitlement(c: Ctx) -> None:
    entitlement = c.client.get_customer_entitlement(c.entitled_customer_id())
    assert entitlement.plan_id == c.plan_id()


def m_check_entitlement(c: Ctx) -> None:
    result = c.client.check_entitlement(c.entitled_customer_id(), "searches", quantity=1)
    assert result.allowed is True
    assert result.feature_key == "searches"


def m_create_contract(c: Ctx) -> None:
    contract = c.client.create_contract(
        c.customer_id(),
        "Py annual",
        "2026-01-01T00:00:00.000Z",
        end_date="2099-01-01T00:00:00.000Z",
        minimum_usdc="100.00",
        discount_pct=10.0,
        included_units={"api_calls": 1000},
    )
    assert contract.customer_id == c.customer_id()
    assert contract.status == "ACTIVE"


def m_list_contracts(c: Ctx) -> None:
    assert c.contract_id() in [x.id for x in c.client.list_contracts(customer_id=c.customer_id())]


def m_get_contract(c: Ctx) -> None:
    assert c.client.get_contract(c.contract_id()).id == c.contract_id()


def m_update_contract(c: Ctx) -> None:
    assert c.client.update_contract(c.contract_id(), name="Py renamed").name == "Py renamed"


def m_delete_contract(c: Ctx) -> None:
    contract = c.client.create_contract(c.customer_id(), "Py doomed", "2026-01-01T00:00:00.000Z")
    c.client.delete_contract(contract.id)


def m_add_contract_override(c: Ctx) -> None:
    override = c.client.add_contract_override(c.contract_id(), "tokens", "0.00005")
    assert override.unit_type == "tokens"


def m_remove_contract_override(c: Ctx) -> None:
    c.client.add_contract_override(c.contract_id(), "api_calls", "0.0005")
    c.client.remove_contract_override(c.contract_id(), "api_calls")


def m_create_entitlement_plan(c: Ctx) -> None:
    plan = c.client.create_entitlement_plan("Py starter", unique("py-starter"), description="Starter", is_default=False)
    assert plan.name == "Py starter"


def m_list_entitlement_plans(c: Ctx) -> None:
    assert c.plan_id() in [x.id for x in c.client.list_entitlement_plans()]


def m_get_entitlement_plan(c: Ctx) -> None:
    assert c.client.get_entitlement_plan(c.plan_id()).id == c.plan_id()


def m_update_entitlement_plan(c: Ctx) -> None:
    assert c.client.update_entitlement_plan(c.plan_id(), description="Updated").description == "Updated"


def m_delete_entitlement_plan(c: Ctx) -> None:
    plan = c.client.create_entitlement_plan("Py doomed plan", unique("py-doomed"))
    c.client.delete_entitlement_plan(plan.id)


def m_add_entitlement_rule(c: Ctx) -> None:
    rule = c.client.add_entitlement_rule(c.plan_id(), "exports", "COUNT", "DAILY", 10)
    assert rule.plan_id == c.plan_id()
    assert rule.feature_key == "exports"


def m_list_entitlement_rules(c: Ctx) -> None:
    assert c.rule_id() in [x.id for x in c.client.list_entitlement_rules(c.plan_id())]


def m_update_entitlement_rule(c: Ctx) -> None:
    assert c.client.update_entitlement_rule(c.rule_id(), limitValue=2000).limit_value == 2000


def m_delete_entitlement_rule(c: Ctx) -> None:
    rule = c.client.add_entitlement_rule(c.plan_id(), "uploads", "AMOUNT", "MONTHLY", 25.5)
    c.client.delete_entitlement_rule(rule.id)


def m_charge(c: Ctx) -> None:
    result = c.client.charge(customer_id=c.customer_id(), meter="api_calls", quantity=3, metadata={"k": "v"})
    assert result.success is True
    assert result.charge.amount_usdc == "0.003000"


def m_charge_async(c: Ctx) -> None:
    result = c.client.charge_async(customer_id=c.customer_id(), meter="api_calls", quantity=4)
    assert result.success is True
    assert result.charge.id


def m_track_usage(c: Ctx) -> None:
    result = c.client.track_usage(customer_id=c.customer_id(), meter="tokens", quantity=120, units="tokens")
    assert result.success is True


def m_get_charge(c: Ctx) -> None:
    assert c.client.get_charge(c.charge_id()).id == c.charge_id()


def m_list_charges(c: Ctx) -> None:
    assert c.charge_id() in [x.id for x in c.client.list_charges(customer_id=c.customer_id()).data]


def m_wrap_api_call(c: Ctx) -> None:
    wrapped = c.client.wrap_api_call(
        customer_id=c.customer_id(),
        meter="tokens",
        call=lambda: {"tokens": 42},
        extract_usage=lambda response: response["tokens"],
    )
    assert wrapped.result == {"tokens": 42}
    assert wrapped.charge.success is True


def m_create_stream_meter(c: Ctx) -> None:
    meter = c.client.create_stream_meter(customer_id=c.customer_id(), meter="tokens")
    meter.add_sync(100)
    meter.add_sync(50)
    flushed = meter.flush()
    assert flushed.success is True
    assert flushed.quantity == 150


def m_list_events(c: Ctx) -> None:
    event_id = c.event_id()
    listed = c.client.list_events(customer_id=c.customer_id(), limit=50)
    assert event_id in [e.id for e in listed.data]
    assert all(e.customer_id == c.customer_id() for e in listed.data)


def m_get_event(c: Ctx) -> None:
    assert c.client.get_event(c.event_id()).id == c.event_id()


def m_get_event_trace(c: Ctx) -> None:
    trace = c.client.get_event_trace(c.event_id())
    assert trace.event is not None or trace.event_id == c.event_id()


def m_estimate_from_usage(c: Ctx) -> None:
    c.charge_id()
    estimate = c.client.estimate_from_usage(
        period_start="2000-01-01T00:00:00Z", period_end="2999-01-01T00:00:00Z", customer_id=c.customer_id()
    )
    assert estimate.line_items


def m_estimate_from_hypothetical(c: Ctx) -> None:
    estimate = c.client.estimate_from_hypothetical(items=[{"usageType": "api_calls", "quantity": 1000}])
    assert estimate.estimated_total_usdc == "1.000000"


def m_checkout(c: Ctx) -> None:
    session = c.client.checkout(amount=2500, return_url="https://app.example/back", customer_id=c.customer_id())
    assert session.amount_usd == 25.0


def m_create_webhook(c: Ctx) -> None:
    created = c.client.create_webhook(url=c.hook_url, events=["customer.created"], description="py")
    assert created.secret.startswith("whsec_")


def m_update_webhook(c: Ctx) -> None:
    updated = c.client.update_webhook(
        c.webhook_id(), description="renamed", events=["charge.succeeded", "charge.failed"]
    )
    assert updated.description == "renamed"
    assert sorted(updated.events) == ["charge.failed", "charge.succeeded"]


def m_list_webhooks(c: Ctx) -> None:
    assert c.webhook_id() in [x.id for x in c.client.list_webhooks().data]


def m_get_webhook(c: Ctx) -> None:
    assert c.client.get_webhook(c.webhook_id()).url == c.hook_url


def m_delete_webhook(c: Ctx) -> None:
    created = c.client.create_webhook(url=c.hook_url, events=["charge.failed"])
    assert c.client.delete_webhook(created.id).success is True


def m_test_webhook(c: Ctx) -> None:
    with webhook_receiver() as (url, received):
        created = c.client.create_webhook(url=url, events=["charge.succeeded"])
        assert c.client.test_webhook(created.id).status == "DELIVERED"
        body, signature = received.get(timeout=10)
        assert verify_webhook_signature(body, signature, created.secret)
        c.client.delete_webhook(created.id)


def m_rotate_webhook_secret(c: Ctx) -> None:
    assert c.client.rotate_webhook_secret(c.webhook_id()).secret.startswith("whsec_")


def m_create_subscription(c: Ctx) -> None:
    sub = c.client.create_subscription(
        c.customer_id(), "Py Team", "ANNUAL", 299.0, description="yearly", trial_days=14, included_usage=1000
    )
    assert sub.customer_id == c.customer_id()


def m_get_subscription(c: Ctx) -> None:
    assert c.client.get_subscription(c.subscription_id()).id == c.subscription_id()


def m_list_subscriptions(c: Ctx) -> None:
    assert c.subscription_id() in [x.id for x in c.client.list_subscriptions(customer_id=c.customer_id()).data]


def m_update_subscription(c: Ctx) -> None:
    assert c.client.update_subscription(c.subscription_id(), name="Py Pro+", price_usdc=39.0).name == "Py Pro+"


def m_cancel_subscription(c: Ctx) -> None:
    cancelled = c.client.cancel_subscription(c.new_subscription_id(), immediate=True)
    assert cancelled.status.value == "CANCELLED"


def m_pause_subscription(c: Ctx) -> None:
    assert c.client.pause_subscription(c.new_subscription_id()).status.value == "PAUSED"


def m_resume_subscription(c: Ctx) -> None:
    sub_id = c.new_subscription_id()
    c.client.pause_subscription(sub_id, resume_date="2099-01-01T00:00:00.000Z")
    assert c.client.resume_subscription(sub_id).status.value == "ACTIVE"


def m_create_workflow(c: Ctx) -> None:
    slug = unique("py-wf")
    assert c.client.create_workflow(name="Py WF", slug=slug, product_surface="AGENT").slug == slug


def m_list_workflows(c: Ctx) -> None:
    assert c.workflow_id() in [x.id for x in c.client.list_workflows().data]


def m_start_run(c: Ctx) -> None:
    run = c.client.start_run(customer_id=c.customer_id(), workflow_id=c.workflow_id(), correlation_id="py-corr")
    assert run.status.value == "PENDING"


def m_end_run(c: Ctx) -> None:
    run = c.client.start_run(customer_id=c.customer_id(), workflow_id=c.workflow_id())
    assert c.client.end_run(run.id, status="COMPLETED").status.value == "COMPLETED"


def m_emit_event(c: Ctx) -> None:
    event = c.client.emit_event(run_id=c.run_id(), event_type="tool.call", quantity=1, cost_units=0.1)
    assert event.run_id == c.run_id()


def m_emit_events_batch(c: Ctx) -> None:
    batch = c.client.emit_events_batch([{"runId": c.run_id(), "eventType": "step", "quantity": 2}])
    assert batch.created == 1


def m_get_run(c: Ctx) -> None:
    assert c.client.get_run(c.run_id()).id == c.run_id()


def m_get_run_timeline(c: Ctx) -> None:
    c.client.emit_event(run_id=c.run_id(), event_type="timeline.step", quantity=1)
    timeline = c.client.get_run_timeline(c.run_id(), limit=100)
    assert timeline.run.id == c.run_id()
    assert timeline.timeline


def m_record_run(c: Ctx) -> None:
    recorded = c.client.record_run(
        customer_id=c.customer_id(), workflow="py-recorded", events=[{"event_type": "step"}], status="COMPLETED"
    )
    assert recorded.events.created == 1


def m_run(c: Ctx) -> None:
    with c.client.run("py-context", customer_id=c.customer_id()) as run:
        run.event("step", quantity=1)
    assert c.client.get_run(run.run_id).status.value == "COMPLETED"


def m_list_meters(c: Ctx) -> None:
    assert "api_calls" in [x.meter for x in c.client.list_meters().data]


METHODS: dict[str, Callable[[Ctx], None]] = {
    name.removeprefix("m_"): function
    for name, function in list(globals().items())
    if name.startswith("m_") and callable(function)
}


def _param(name: str) -> Any:
    if name in SDK_BUGS:
        return pytest.param(name, id=name, marks=[pytest.mark.xfail(strict=True, reason=SDK_BUGS[name])])
    if name in NOT_YET_IN_SANDBOX:
        # raises=DripAPIError: a missing route is an HTTP error; anything else (e.g. a response the SDK cannot
        # parse once the route exists) is a real failure, not this expected one.
        mark = pytest.mark.xfail(strict=True, reason=NOT_YET_IN_SANDBOX[name], raises=DripAPIError)
        return pytest.param(name, id=name, marks=[mark])
    return pytest.param(name, id=name)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    db_path: Path = tmp_path_factory.mktemp("pysdk") / "sandbox.db"
    # The receiver outlives the sandbox, so deliveries queued during teardown still reach it.
    with webhook_receiver() as (hook_url, hooks), running_sandbox(db_path) as root:
        # Resilience off: its circuit breaker would turn one missing route into failures of unrelated methods.
        client = Drip(api_key=KEY, base_url=f"{root}/v1", resilience=False, timeout=10)
        try:
            yield Ctx(client=client, api_url=f"{root}/v1", hook_url=hook_url, hooks=hooks)
        finally:
            client.close()


@pytest.mark.parametrize("method", [_param(name) for name in METHODS])
def test_python_sdk_method(ctx: Ctx, method: str) -> None:
    METHODS[method](ctx)


def api_methods_of(cls: type) -> set[str]:
    """Public methods and properties defined on `cls` (class constants such as DEFAULT_TIMEOUT are not members)."""
    members = {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod, property)))
    }
    assert members >= NON_API_MEMBERS, NON_API_MEMBERS - members
    return members - NON_API_MEMBERS


def test_every_api_method_is_exercised() -> None:
    found = api_methods_of(Drip)
    assert len(found) == 68, sorted(found)
    assert set(METHODS) == found
    assert set(SDK_BUGS) <= found
    assert set(NOT_YET_IN_SANDBOX) <= found
    assert not set(SDK_BUGS) & set(NOT_YET_IN_SANDBOX)
