"""Withdrawals, portal sessions, and customer update / provision / sync-balance."""

from __future__ import annotations

from datetime import datetime

import httpx2
import pytest
from sandbox_helpers import PK, new_customer, usage

from drip_mcp.sandbox import Sandbox

pytestmark = pytest.mark.anyio


async def _earn(client: httpx2.AsyncClient, tokens: int) -> str:
    customer_id = await new_customer(client, f"payer-{tokens}")
    response = await client.post("/v1/usage", json=usage(customer_id, f"earn-{tokens}", "tokens", tokens))
    assert response.status_code == 201, response.text
    return customer_id


async def test_withdrawal_happy_path_replay_list_and_cancel(client: httpx2.AsyncClient) -> None:
    await _earn(client, 1_000_000)  # 10.000000 USDC earned
    estimate = (await client.get("/v1/withdrawals/fee-estimate", params={"amount_usdc": "5.5"})).json()
    assert estimate == {
        "amount_usdc": "5.500000",
        "fee_usdc": "0.055000",
        "net_amount_usdc": "5.445000",
        "fee_bps": 100,
        "fee_percent": "1.00",
        "method": "ACH",
        "estimated_arrival": "1-3 business days",
    }
    body = {"amount_usdc": "5.5", "idempotency_key": "w-1", "bank_description": "Chase ****1234"}
    created = await client.post("/v1/withdrawals", json=body)
    assert created.status_code == 201, created.text
    withdrawal = created.json()
    assert (withdrawal["status"], withdrawal["net_amount_usdc"], withdrawal["completed_at"]) == (
        "PENDING",
        "5.445000",
        None,
    )
    replay = await client.post("/v1/withdrawals", json=body)
    assert replay.status_code == 200
    assert replay.json()["id"] == withdrawal["id"]
    too_much = await client.post("/v1/withdrawals", json={"amount_usdc": 4.6, "idempotency_key": "w-2"})
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "INSUFFICIENT_BALANCE"
    assert too_much.json()["availableUsdc"] == "4.500000"
    listed = (await client.get("/v1/withdrawals")).json()
    assert (listed["total"], [w["id"] for w in listed["withdrawals"]]) == (1, [withdrawal["id"]])
    cancelled = (await client.delete(f"/v1/withdrawals/{withdrawal['id']}")).json()
    assert cancelled["status"] == "CANCELLED"
    again = await client.delete(f"/v1/withdrawals/{withdrawal['id']}")
    assert again.status_code == 409
    assert again.json()["code"] == "WITHDRAWAL_NOT_CANCELLABLE"
    ok = await client.post("/v1/withdrawals", json={"amount_usdc": 10, "idempotency_key": "w-3"})
    assert ok.status_code == 201


async def test_withdrawals_and_portal_sessions_refuse_public_keys(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    calls = [
        client.post("/v1/withdrawals", json={"amount_usdc": 1, "idempotency_key": "k"}, headers=PK),
        client.get("/v1/withdrawals", headers=PK),
        client.get("/v1/withdrawals/fee-estimate?amount_usdc=1", headers=PK),
        client.post("/v1/portal-sessions", json={"customerId": customer_id}, headers=PK),
        client.post(f"/v1/customers/{customer_id}/provision", json={}, headers=PK),
        client.post(f"/v1/customers/{customer_id}/sync-balance", json={}, headers=PK),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403
        assert response.json()["code"] == "PUBLIC_KEY_NOT_ALLOWED"


async def test_portal_session_create_clamp_and_revoke(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client, "portal-user")
    created = await client.post("/v1/portal-sessions", json={"customerId": "portal-user", "expiresInMinutes": 1})
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["customerId"] == customer_id  # resolved from the external id
    assert session["url"] == f"/portal/{session['token']}"
    created_at = datetime.now().astimezone()
    expires = datetime.fromisoformat(session["expiresAt"].replace("Z", "+00:00"))
    assert 4 * 60 <= (expires - created_at).total_seconds() <= 6 * 60  # clamped up to 5 minutes
    revoked = (await client.delete(f"/v1/portal-sessions/{session['id']}")).json()
    assert revoked["success"] is True
    assert (await client.delete(f"/v1/portal-sessions/{session['id']}")).status_code == 409
    assert (await client.post("/v1/portal-sessions", json={"customerId": "nobody"})).status_code == 404


async def test_patch_customer_fields_and_conflicts(client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client, "one")
    await new_customer(client, "two")
    patched = await client.patch(
        f"/v1/customers/{customer_id}",
        json={"metadata": {"plan": "pro"}, "email": "a@example.com", "status": "PAUSED", "externalCustomerId": "uno"},
    )
    assert patched.status_code == 200, patched.text
    view = patched.json()
    assert (view["metadata"], view["email"], view["status"], view["externalCustomerId"]) == (
        {"plan": "pro"},
        "a@example.com",
        "PAUSED",
        "uno",
    )
    taken = await client.patch(f"/v1/customers/{customer_id}", json={"externalCustomerId": "two"})
    assert taken.status_code == 409
    assert taken.json()["code"] == "DUPLICATE_CUSTOMER"
    assert taken.json()["existingCustomerId"] != customer_id
    bad = await client.patch(f"/v1/customers/{customer_id}", json={"status": "GONE", "balance": 5})
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {"status", "balance"}
    assert (await client.patch("/v1/customers/nope", json={"email": "x@y.z"})).status_code == 404


async def test_provision_and_sync_balance(sandbox: Sandbox, client: httpx2.AsyncClient) -> None:
    customer_id = await new_customer(client)
    first = (await client.post(f"/v1/customers/{customer_id}/provision", json={})).json()
    assert first["already_deployed"] is False
    assert first["deploy_tx_hash"].startswith("0x")
    balance = (await client.get(f"/v1/customers/{customer_id}/balance")).json()
    assert first["smart_account_address"] == balance["onchainAddress"]
    assert first["billing_balance_usdc"] == "100.000000"
    second = (await client.post(f"/v1/customers/{customer_id}/provision", json={})).json()
    assert (second["already_deployed"], second["deploy_tx_hash"]) == (True, None)
    assert (await client.get(f"/v1/customers/{customer_id}")).json()["onchainAddress"] == first["smart_account_address"]
    await client.post("/v1/usage", json=usage(customer_id, "s", quantity=3))
    synced = (await client.post(f"/v1/customers/{customer_id}/sync-balance", json={})).json()
    assert synced["customerId"] == customer_id
    assert synced["newBalance"] == synced["previousBalance"] == synced["balance"] == "99.997000"
    assert synced["changed"] is False
    assert set(synced) >= {"blockNumber", "syncedAt"}
    assert (await client.post("/v1/customers/nope/sync-balance", json={})).status_code == 404
