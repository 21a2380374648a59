"""The status toolset end to end: drip_ping and drip_session_summary."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from mcp import Client
from server_fixtures import PK, Harness, open_harness

from drip_mcp.api.client import DripClient
from drip_mcp.keys import ApiKey
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.tools import OPERATIONS

pytestmark = pytest.mark.anyio


async def test_ping_reports_health_key_and_tools_without_revealing_the_key(h: Harness) -> None:
    out = await h.ok("drip_ping")
    assert out["ok"] is True
    assert out["api_status"] == "healthy"
    assert (out["key_type"], out["key_mode"], out["sandbox"], out["read_only"]) == ("secret", "test", True, False)
    assert out["key"].startswith("sk_test_")
    assert "…" in out["key"]
    assert out["tools"] == [t.name for t in OPERATIONS]
    assert out["key_accepted"] is True
    assert h.sent_to("GET", "/health")
    assert h.sent_to("GET", "/v1/customers")


async def test_ping_is_not_ok_when_drip_refuses_the_key(tmp_path: Path) -> None:
    settings = Settings.load(
        {"DRIP_MCP_STATE_DIR": str(tmp_path)}, api_key=PK, sandbox=True, sandbox_db=tmp_path / "s.db"
    )
    async with Sandbox(SandboxConfig(db_path=tmp_path / "s.db")) as sandbox:  # it answers 401 to a live key
        live = ApiKey("pk_live_notforthesandbox01")
        async with (
            DripClient(live, base_url="http://sandbox.local/v1", transport=sandbox.transport()) as drip,
            Client(build_server(settings, drip)) as client,
        ):
            result = await client.call_tool("drip_ping", {})
    out = result.structured_content
    assert out is not None
    assert (out["ok"], out["key_accepted"]) == (False, False)
    assert "401" in out["api_status"]


async def test_ping_with_a_public_key_lists_only_public_tools(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        out = await h.ok("drip_ping")
    assert out["key_type"] == "public"
    assert "drip_create_webhook" not in out["tools"]
    assert "drip_charge" in out["tools"]


async def test_session_summary_lists_this_processs_charges_without_calling_drip(h: Harness) -> None:
    customer_id = await h.new_customer()
    await h.ok(
        "drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 4, "idempotency_key": "ss-1"}
    )
    sent_before = len(h.sent)
    out = await h.ok("drip_session_summary")
    assert len(h.sent) == sent_before
    charges = [e for e in out["entries"] if e["idempotency_key"] == "ss-1"]
    assert len(charges) == 1
    assert (charges[0]["customer_id"], charges[0]["meter"]) == (customer_id, "api_calls")
    assert Decimal(charges[0]["amount_usdc"]) == Decimal("0.004")
    assert Decimal(out["total_charged_usdc"]) == Decimal("0.004")
