"""Resources and templates end to end, both protocol eras: reads, key scope, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError
from server_fixtures import PK, Harness, open_harness

from drip_mcp.features.resources import RESOURCE_NOT_FOUND

pytestmark = pytest.mark.anyio

PUBLIC_TEMPLATES = {"drip://customers/{customer_id}", "drip://runs/{run_id}/timeline", "drip://charges/{charge_id}"}


async def _read_json(h: Harness, uri: str) -> Any:
    result = await h.mcp.read_resource(uri)
    [content] = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)  # type: ignore[union-attr]


async def test_secret_key_lists_every_template_and_the_static_resources(h: Harness) -> None:
    templates = {t.uri_template for t in (await h.mcp.list_resource_templates()).resource_templates}
    assert templates == PUBLIC_TEMPLATES | {"drip://webhooks/{webhook_id}"}
    uris = {str(r.uri) for r in (await h.mcp.list_resources()).resources}
    assert uris == {"drip://session/ledger", "drip://meters"}


async def test_public_key_does_not_list_the_template_it_may_not_read(mode: str, tmp_path: Path) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        templates = {t.uri_template for t in (await h.mcp.list_resource_templates()).resource_templates}
        assert templates == PUBLIC_TEMPLATES
        with pytest.raises(MCPError) as caught:
            await h.mcp.read_resource("drip://webhooks/wh_1")
        assert caught.value.error.data["error"]["code"] == "PUBLIC_KEY_NOT_ALLOWED"
        assert h.sent == []


async def test_customer_template_reads_the_customer(h: Harness) -> None:
    customer_id = await h.new_customer("ext-42")
    customer = await _read_json(h, f"drip://customers/{customer_id}")
    assert (customer["id"], customer["external_customer_id"]) == (customer_id, "ext-42")


async def test_charge_and_run_timeline_templates_read_what_the_tools_wrote(h: Harness) -> None:
    customer_id = await h.new_customer()
    charged = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 2})
    charge = await _read_json(h, f"drip://charges/{charged['charge_id']}")
    assert (charge["id"], charge["amount_usdc"]) == (charged["charge_id"], "0.002000")
    run_id = await h.new_run(customer_id)
    timeline = await _read_json(h, f"drip://runs/{run_id}/timeline")
    assert timeline["run_id"] == run_id
    assert timeline["status"] == (await h.ok("drip_get_run_timeline", {"run_id": run_id}))["status"]


async def test_meters_resource_lists_the_active_meters_with_prices(h: Harness) -> None:
    meters = await _read_json(h, "drip://meters")
    by_name = {m["meter"]: m for m in meters["meters"]}
    assert "api_calls" in by_name
    assert by_name["api_calls"]["unit_price_usd"] == "0.001"
    assert meters["count"] == len(meters["meters"])


async def test_unknown_customer_is_a_resource_not_found_error(h: Harness) -> None:
    with pytest.raises(MCPError) as caught:
        await h.mcp.read_resource("drip://customers/cus_missing")
    assert caught.value.error.code == RESOURCE_NOT_FOUND
    assert caught.value.error.data["error"]["status"] == 404


async def test_session_ledger_resource_is_still_served(h: Harness) -> None:
    ledger = await _read_json(h, "drip://session/ledger")
    assert isinstance(ledger, dict)
