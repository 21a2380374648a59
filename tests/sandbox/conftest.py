from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx2
import pytest
from sandbox_helpers import SK

from drip_mcp.sandbox import Sandbox, SandboxConfig


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(starting_balance_usdc=Decimal("100")))


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox.test", headers=SK) as http:
        yield http
