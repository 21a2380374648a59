"""Shared helpers for the sandbox tests (imported by name: tests/ has no __init__)."""

from __future__ import annotations

from typing import Any

import httpx2

SK = {"Authorization": "Bearer sk_test_sandboxsecret"}
PK = {"Authorization": "Bearer pk_test_sandboxpublic"}


async def new_customer(client: httpx2.AsyncClient, external_id: str = "user-1") -> str:
    response = await client.post("/v1/customers", json={"externalCustomerId": external_id})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["id"]
    return customer_id


def usage(customer_id: str, key: str, meter: str = "api_calls", quantity: Any = 1) -> dict[str, Any]:
    return {"customerId": customer_id, "usageType": meter, "quantity": quantity, "idempotencyKey": key}
