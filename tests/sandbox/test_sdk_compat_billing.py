"""The published Python SDK (drip-sdk 0.1.2) on the async-charge, cap, provisioning and contract routes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from drip import Drip, DripAPIError, SpendingCapType, verify_webhook_signature
from test_sdk_compat import running_sandbox, webhook_receiver

pytestmark = pytest.mark.slow

KEY = "sk_test_sdkbilling01"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("sdk-billing") / "sandbox.db") as url:
        yield url


@pytest.fixture
def drip(root: str) -> Iterator[Drip]:
    client = Drip(api_key=KEY, base_url=f"{root}/v1", resilience=False, timeout=10)
    yield client
    client.close()


def test_sdk_charge_async_settles_and_webhook_verifies(drip: Drip) -> None:
    with webhook_receiver() as (url, received):
        hook = drip.create_webhook(url=url, events=["charge.succeeded"])
        try:
            customer = drip.create_customer(external_customer_id="sdk-async-1")
            queued = drip.charge_async(customer_id=customer.id, meter="api_calls", quantity=4, idempotency_key="sa-1")
            assert queued.charge.status.value == "PENDING"
            assert queued.charge.amount_usdc == "0.004000"
            body, signature = received.get(timeout=10)
            assert verify_webhook_signature(body, signature, hook.secret)
            event = json.loads(body)
            assert (event["type"], event["data"]["chargeId"]) == ("charge.succeeded", queued.charge.id)
            assert drip.get_charge(queued.charge.id).status.value == "CONFIRMED"
            assert drip.get_balance(customer.id).balance_usdc == "99.996000"
        finally:
            drip.delete_webhook(hook.id)


def test_sdk_spending_caps_enforced(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-caps-1")
    cap = drip.set_customer_spending_cap(customer.id, SpendingCapType.DAILY_CHARGE_LIMIT, 0.005)
    assert (cap.cap_type, cap.limit_value, cap.auto_block) == ("DAILY_CHARGE_LIMIT", "0.005000", True)
    drip.charge(customer_id=customer.id, meter="api_calls", quantity=5, idempotency_key="cap-1")
    with pytest.raises(DripAPIError) as refused:
        drip.charge(customer_id=customer.id, meter="api_calls", quantity=1, idempotency_key="cap-2")
    assert (refused.value.status_code, refused.value.code) == (403, "SPENDING_CAP_EXCEEDED")
    [listed] = drip.get_customer_spending_caps(customer.id).caps
    assert (listed.id, listed.current_usage) == (cap.id, "0.005000")
    drip.remove_customer_spending_cap(customer.id, cap.id)
    assert drip.get_customer_spending_caps(customer.id).caps == []
    assert drip.charge(customer_id=customer.id, meter="api_calls", quantity=1, idempotency_key="cap-2").charge


def test_sdk_provision_and_sync_balance(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-prov-1")
    provisioned = drip.provision_customer(customer.id)  # 0.1.2 parses this as a Customer
    assert provisioned.id == customer.id
    assert provisioned.onchain_address is not None
    synced = drip.sync_customer_balance(customer.id)
    assert synced["newBalance"] == synced["balance"] == "100.000000"


def test_sdk_contracts_and_overrides(drip: Drip) -> None:
    customer = drip.create_customer(external_customer_id="sdk-contract-1")
    contract = drip.create_contract(customer.id, "Enterprise", "2026-01-01T00:00:00Z", metadata={"deal": "x"})
    assert contract.status == "ACTIVE"
    override = drip.add_contract_override(contract.id, "api_calls", "0.0002")
    assert override.unit_price_usdc == "0.0002"
    charged = drip.charge(customer_id=customer.id, meter="api_calls", quantity=10, idempotency_key="ct-1")
    assert charged.charge.amount_usdc == "0.002000"
    assert [c.id for c in drip.list_contracts(customer_id=customer.id)] == [contract.id]
    assert drip.get_contract(contract.id).overrides[0].unit_type == "api_calls"
    assert drip.update_contract(contract.id, name="Renamed").name == "Renamed"
    drip.remove_contract_override(contract.id, "api_calls")
    drip.delete_contract(contract.id)
    assert drip.get_contract(contract.id).status == "CANCELLED"
