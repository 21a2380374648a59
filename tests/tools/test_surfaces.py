"""The two surfaces: ``core`` (a few tools plus catalogue search and call) and ``full`` (every operation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, PK, SK, assert_error, open_harness, result_payload

from drip_mcp.keys import KeyType
from drip_mcp.tools import CATALOGUE_TOOLS, OPERATIONS

pytestmark = pytest.mark.anyio

CONTEXT_BUDGET = 24_000  # characters of tools/list JSON on the default surface with a pk_ key (issue 13)
CATALOGUE = [t.name for t in CATALOGUE_TOOLS]


def _core(key_type: KeyType) -> list[str]:
    return [t.name for t in OPERATIONS if t.core and (t.scope is KeyType.PUBLIC or key_type is KeyType.SECRET)]


async def _listed(h: Any) -> list[dict[str, Any]]:
    tools = (await h.mcp.list_tools()).tools
    return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools]


@pytest.mark.parametrize("mode", MODES)
async def test_core_tools_list_with_a_public_key_fits_the_context_budget(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK, surface="core") as h:
        listed = await _listed(h)
    size = len(json.dumps(listed))
    print(f"core tools/list, pk_ key: {len(listed)} tools, {size} characters")
    assert size <= CONTEXT_BUDGET
    assert len(listed) <= 12 + len(CATALOGUE)


@pytest.mark.parametrize(("key", "key_type"), [(PK, KeyType.PUBLIC), (SK, KeyType.SECRET)])
async def test_core_lists_the_core_operations_and_the_two_catalogue_tools(
    tmp_path: Path, key: str, key_type: KeyType
) -> None:
    async with open_harness(tmp_path, api_key=key, surface="core") as h:
        names = [t["name"] for t in await _listed(h)]
    assert names == _core(key_type) + CATALOGUE
    assert len(_core(key_type)) <= 12


@pytest.mark.parametrize("surface", ["core", "full"])
async def test_tools_json_says_which_surface_lists_each_tool(tmp_path: Path, surface: str) -> None:
    from drip_mcp.manifest import manifest

    async with open_harness(tmp_path, api_key=SK, surface=surface) as h:
        names = {t["name"] for t in await _listed(h)}
    assert names == {t["name"] for t in manifest()["tools"] if surface in t["surfaces"]}


async def test_full_lists_every_operation_and_no_catalogue_tool(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="full") as h:
        names = [t["name"] for t in await _listed(h)]
    assert names == [t.name for t in OPERATIONS]


async def test_find_operations_with_a_public_key_never_finds_a_secret_operation(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=PK, surface="core") as h:
        found = await h.ok("drip_find_operations", {"query": "webhook secret", "limit": 20})
        everything = await h.ok("drip_find_operations", {"limit": 20})
    secret = {t.name for t in OPERATIONS if t.scope is KeyType.SECRET}
    assert not {op["name"] for op in found["operations"]} & secret
    assert everything["total_matches"] == len([t for t in OPERATIONS if t.scope is KeyType.PUBLIC])


async def test_find_operations_ranks_the_named_operation_first_with_its_schema(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="core") as h:
        found = await h.ok("drip_find_operations", {"query": "rotate webhook secret"})
    first = found["operations"][0]
    assert first["name"] == "drip_rotate_webhook_secret"
    assert first["key_type"] == "secret"
    assert "webhook_id" in first["input_schema"]["properties"]


async def test_call_operation_returns_the_operations_own_result_and_error(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="core") as h:
        customer = await h.new_customer("catalogue-user")
        direct = await h.ok("drip_get_customer", {"customer_id": customer})
        via = await h.call(
            "drip_call_operation", {"operation": "drip_get_customer", "arguments": {"customer_id": customer}}
        )
        missing = await h.call(
            "drip_call_operation", {"operation": "drip_get_customer", "arguments": {"customer_id": "nope"}}
        )
        invalid = await h.call("drip_call_operation", {"operation": "drip_get_customer", "arguments": {"bogus": 1}})
    assert result_payload(via) == direct
    assert assert_error(missing, "NOT_FOUND")["status"] == 404
    assert assert_error(invalid, "VALIDATION_ERROR")["details"]


async def test_call_operation_with_a_public_key_refuses_a_secret_operation_without_a_request(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=PK, surface="core") as h:
        result = await h.call(
            "drip_call_operation",
            {"operation": "drip_create_webhook", "arguments": {"url": "https://x.test", "events": ["*"]}},
        )
        assert_error(result, "PUBLIC_KEY_NOT_ALLOWED")
        assert h.sent == []


async def test_call_operation_cannot_call_itself_or_an_unknown_operation(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="core") as h:
        itself = await h.call("drip_call_operation", {"operation": "drip_call_operation", "arguments": {}})
        unknown = await h.call("drip_call_operation", {"operation": "drip_no_such_thing", "arguments": {}})
    assert_error(itself, "UNKNOWN_OPERATION")
    assert_error(unknown, "UNKNOWN_OPERATION")


async def test_money_safety_and_the_ledger_apply_to_a_catalogue_call(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="core", session_budget_usdc="0.002") as h:
        customer = await h.new_customer("budget-user")
        args = {"customer_id": customer, "meter": "api_calls", "quantity": 2}
        first = await h.call("drip_call_operation", {"operation": "drip_charge", "arguments": args})
        second = await h.call("drip_call_operation", {"operation": "drip_charge", "arguments": args})
        summary = await h.ok("drip_session_summary", {})
    assert result_payload(first)["status"] == "charged"
    assert assert_error(second, "SPEND_CAP_EXCEEDED")["cap"] == "session_budget"
    assert [e["outcome"] for e in summary["entries"]] == ["charged", "failed"]  # the refusal is recorded too
    assert summary["budget_remaining_usdc"] == "0.000000"


async def test_under_read_only_call_operation_is_read_only_and_reaches_only_reads(tmp_path: Path) -> None:
    async with open_harness(tmp_path, api_key=SK, surface="core", read_only=True) as h:
        tools = {t["name"]: t for t in await _listed(h)}
        refused = await h.call(
            "drip_call_operation",
            {"operation": "drip_track_usage", "arguments": {"customer_id": "c", "meter": "tokens", "quantity": 1}},
        )
        found = await h.ok("drip_find_operations", {"limit": 20})
    annotations = tools["drip_call_operation"]["annotations"]
    assert (annotations["readOnlyHint"], annotations["destructiveHint"]) == (True, False)
    assert "not enabled on this server" in assert_error(refused, "OPERATION_NOT_ENABLED")["message"]
    assert h.sent == []
    assert all(op["read_only"] for op in found["operations"])


async def test_a_refused_catalogue_call_names_the_real_reason(tmp_path: Path) -> None:
    """A pk_ key asking for a secret operation is told to use sk_; one asking for a disabled write is told
    that the server disabled it (not that its key is too weak)."""
    async with open_harness(tmp_path, api_key=PK, surface="core", read_only=True) as h:
        secret = await h.call("drip_call_operation", {"operation": "drip_list_webhooks", "arguments": {}})
        disabled = await h.call(
            "drip_call_operation",
            {"operation": "drip_track_usage", "arguments": {"customer_id": "c", "meter": "tokens", "quantity": 1}},
        )
    assert "sk_" in assert_error(secret, "PUBLIC_KEY_NOT_ALLOWED")["message"]
    assert assert_error(disabled, "OPERATION_NOT_ENABLED")["status"] == 403
    assert h.sent == []
