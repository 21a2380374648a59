from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from drip_mcp.sandbox import Sandbox, SandboxConfig

SK = {"Authorization": "Bearer sk_test_sandboxsecret"}
PK = {"Authorization": "Bearer pk_test_sandboxpublic"}


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(starting_balance_usdc=Decimal("100")))


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK
    ) as http:
        yield http


async def new_customer(client: httpx2.AsyncClient, external_id: str = "user-1") -> str:
    response = await client.post("/v1/customers", json={"externalCustomerId": external_id})
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["id"]
    return customer_id


def usage(customer_id: str, key: str, meter: str = "api_calls", quantity: Any = 1) -> dict[str, Any]:
    return {"customerId": customer_id, "usageType": meter, "quantity": quantity, "idempotencyKey": key}
