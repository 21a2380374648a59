"""Key scope and operator filters: what a key may see and call, refused before any request is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_fixtures import MODES, PK, SK, Harness, open_harness, state_env

from drip_mcp.errors import ConfigurationError
from drip_mcp.keys import KeyType
from drip_mcp.settings import Settings
from drip_mcp.tools import OPERATIONS, TOOLS_BY_NAME, select_tools

pytestmark = pytest.mark.anyio

SECRET_ONLY = sorted(t.name for t in OPERATIONS if t.scope is KeyType.SECRET)
PUBLIC = [t.name for t in OPERATIONS if t.scope is KeyType.PUBLIC]
# DESIGN "Keys and scope": what only a secret key may do. Whole toolsets, plus operations named for the
# secret-only resources of other toolsets (entitlement plans/rules/assignment, provision, sync-balance,
# pricing-plan mutations, portal sessions, withdrawals). Everything else takes a public key too.
SECRET_TOOLSETS = {"webhooks", "contracts", "admin"}
SECRET_RESOURCES = (
    "entitlement_plan",
    "entitlement_rule",
    "customer_entitlement",
    "provision",
    "sync_customer_balance",
    "portal_session",
    "withdrawal",
)


def design_says_secret_only(name: str) -> bool:
    spec = TOOLS_BY_NAME[name]
    return (
        spec.toolset in SECRET_TOOLSETS
        or any(resource in name for resource in SECRET_RESOURCES)
        or ("pricing_plan" in name and not spec.read_only)
    )


# Arguments that pass input validation, so a refusal can only come from the scope check.
SECRET_TOOL_ARGS = {
    "drip_create_webhook": {"url": "http://127.0.0.1:9/x", "events": ["*"]},
    "drip_list_webhooks": {},
    "drip_get_webhook": {"webhook_id": "wh_x"},
    "drip_delete_webhook": {"webhook_id": "wh_x"},
    "drip_test_webhook": {"webhook_id": "wh_x"},
    "drip_rotate_webhook_secret": {"webhook_id": "wh_x"},
    "drip_update_webhook": {"webhook_id": "wh_x", "is_active": False},
    "drip_list_webhook_deliveries": {"webhook_id": "wh_x"},
    "drip_get_webhook_delivery": {"webhook_id": "wh_x", "delivery_id": "del_x"},
    "drip_retry_webhook_delivery": {"webhook_id": "wh_x", "delivery_id": "del_x"},
    "drip_provision_customer": {"customer_id": "cus_x"},
    "drip_sync_customer_balance": {"customer_id": "cus_x"},
    "drip_create_entitlement_plan": {"name": "Pro", "slug": "pro"},
    "drip_list_entitlement_plans": {},
    "drip_get_entitlement_plan": {"plan_id": "plan_x"},
    "drip_update_entitlement_plan": {"plan_id": "plan_x", "name": "Pro+"},
    "drip_delete_entitlement_plan": {"plan_id": "plan_x"},
    "drip_add_entitlement_rule": {
        "plan_id": "plan_x",
        "feature_key": "api_calls",
        "limit_type": "COUNT",
        "period": "DAILY",
        "limit_value": 10,
    },
    "drip_list_entitlement_rules": {"plan_id": "plan_x"},
    "drip_update_entitlement_rule": {"rule_id": "rule_x", "limit_value": 5},
    "drip_delete_entitlement_rule": {"rule_id": "rule_x"},
    "drip_assign_customer_entitlement": {"customer_id": "cus_x", "plan_id": "plan_x"},
    "drip_get_customer_entitlement": {"customer_id": "cus_x"},
    "drip_create_contract": {"customer_id": "cus_x", "name": "Enterprise", "start_date": "2026-01-01"},
    "drip_list_contracts": {},
    "drip_get_contract": {"contract_id": "ctr_x"},
    "drip_update_contract": {"contract_id": "ctr_x", "name": "Enterprise 2"},
    "drip_delete_contract": {"contract_id": "ctr_x"},
    "drip_add_contract_override": {"contract_id": "ctr_x", "unit_type": "api_calls", "unit_price_usd": 0.0005},
    "drip_remove_contract_override": {"contract_id": "ctr_x", "unit_type": "api_calls"},
}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def listed(h: Harness) -> list[str]:
    return [t.name for t in (await h.mcp.list_tools()).tools]


# --- the registry is fully classified -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [t.name for t in OPERATIONS])
def test_every_tool_declares_a_key_type(name: str) -> None:
    assert isinstance(TOOLS_BY_NAME[name].scope, KeyType)


def test_secret_only_tools_are_exactly_what_design_reserves_for_secret_keys() -> None:
    assert sorted(t.name for t in OPERATIONS if design_says_secret_only(t.name)) == SECRET_ONLY


def test_entitlement_checks_and_subscriptions_take_a_public_key() -> None:
    assert TOOLS_BY_NAME["drip_check_entitlement"].scope is KeyType.PUBLIC
    assert {t.scope for t in OPERATIONS if t.toolset == "subscriptions"} == {KeyType.PUBLIC}


def test_secret_tool_args_cover_every_secret_only_tool() -> None:
    assert set(SECRET_TOOL_ARGS) == set(SECRET_ONLY)


def test_select_tools_for_a_public_key_drops_every_secret_tool() -> None:
    assert [t.name for t in select_tools(KeyType.PUBLIC)] == PUBLIC
    assert [t.name for t in select_tools(KeyType.SECRET)] == [t.name for t in OPERATIONS]


# --- public key ---------------------------------------------------------------------------------------------


async def test_public_key_lists_no_secret_only_tool(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        names = await listed(h)
    assert names == PUBLIC
    assert not set(names) & set(SECRET_ONLY)


@pytest.mark.parametrize("name", SECRET_ONLY)
async def test_public_key_calling_a_secret_tool_is_refused_with_no_request(
    tmp_path: Path, mode: str, name: str
) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        error = await h.error(name, SECRET_TOOL_ARGS[name], "PUBLIC_KEY_NOT_ALLOWED")
        assert error["status"] == 403
        assert error["retryable"] is False
        assert "sk_" in error["message"]
        assert "sk_" in error["hint"]
        assert h.sent == []


async def test_public_key_scope_check_comes_before_input_validation(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        await h.error("drip_create_webhook", {"url": 42}, "PUBLIC_KEY_NOT_ALLOWED")
        assert h.sent == []


async def test_public_key_still_uses_public_tools(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK) as h:
        customer_id = await h.new_customer()
        out = await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
        assert out["status"] == "charged"


# --- secret key ---------------------------------------------------------------------------------------------


async def test_secret_key_lists_every_catalogue_tool_in_registry_order(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=SK) as h:
        assert await listed(h) == [t.name for t in OPERATIONS]


# --- operator filters only narrow ---------------------------------------------------------------------------


async def test_toolsets_filter_lists_only_that_toolset_and_refuses_the_rest(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, toolsets=("usage",)) as h:
        names = await listed(h)
        assert names == [t.name for t in OPERATIONS if t.toolset == "usage"]
        error = await h.error("drip_charge", {"customer_id": "c", "meter": "m", "quantity": 1}, "UNKNOWN_TOOL")
        assert "disabled" in error["message"]
        assert h.sent == []


async def test_tools_filter_lists_exactly_the_named_tools(tmp_path: Path, mode: str) -> None:
    chosen = ("drip_get_balance", "drip_ping")
    async with open_harness(tmp_path, mode, tools=chosen) as h:
        assert await listed(h) == list(chosen)
        await h.error("drip_list_customers", {}, "UNKNOWN_TOOL")
        assert h.sent == []


async def test_tools_filter_cannot_widen_a_public_keys_scope(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, api_key=PK, tools=("drip_list_webhooks", "drip_ping")) as h:
        assert await listed(h) == ["drip_ping"]
        await h.error("drip_list_webhooks", {}, "PUBLIC_KEY_NOT_ALLOWED")
        assert h.sent == []


async def test_exclude_tools_removes_and_refuses_them(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, exclude_tools=("drip_charge", "drip_checkout")) as h:
        names = await listed(h)
        assert names == [t.name for t in OPERATIONS if t.name not in ("drip_charge", "drip_checkout")]
        await h.error("drip_charge", {"customer_id": "c", "meter": "m", "quantity": 1}, "UNKNOWN_TOOL")
        assert h.sent == []


async def test_read_only_lists_only_read_only_tools(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, read_only=True) as h:
        tools = (await h.mcp.list_tools()).tools
    assert [t.name for t in tools] == [t.name for t in OPERATIONS if t.read_only]
    assert all(t.annotations is not None and t.annotations.read_only_hint is True for t in tools)


@pytest.mark.parametrize("name", [t.name for t in OPERATIONS if not t.read_only])
async def test_read_only_refuses_every_mutating_tool_with_no_request(tmp_path: Path, mode: str, name: str) -> None:
    async with open_harness(tmp_path, mode, read_only=True) as h:
        error = await h.error(name, {}, "UNKNOWN_TOOL")
        assert "disabled" in error["message"]
        assert h.sent == []


async def test_read_only_still_serves_reads(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode, read_only=True) as h:
        out = await h.ok("drip_list_meters")
        assert out["count"] >= 1


async def test_unknown_tool_name_is_a_structured_error(tmp_path: Path, mode: str) -> None:
    async with open_harness(tmp_path, mode) as h:
        error = await h.error("drip_does_not_exist", {"x": 1}, "UNKNOWN_TOOL")
        assert "does not exist" in error["message"]
        assert h.sent == []


@pytest.mark.parametrize("field", ["tools", "exclude_tools"])
async def test_an_unknown_tool_in_the_operator_filters_is_a_configuration_error(tmp_path: Path, field: str) -> None:
    from drip_mcp.api.client import DripClient
    from drip_mcp.server import build_server

    settings = Settings.load(
        state_env(), api_key=SK, sandbox=True, sandbox_db=tmp_path / "s.db", **{field: ("drip_nope",)}
    )
    assert settings.api_key is not None
    async with DripClient(settings.api_key, base_url="http://sandbox.local/v1") as client:
        with pytest.raises(ConfigurationError) as info:
            build_server(settings, client)
    assert info.value.code == "CONFIGURATION_ERROR"
    assert "drip_nope" in info.value.message


@pytest.mark.parametrize("name", SECRET_ONLY)
def test_a_secret_only_description_says_so(name: str) -> None:
    # On the full surface an sk_ key sees these tools; the sentence tells a model why a pk_ key would not.
    assert TOOLS_BY_NAME[name].description.endswith("Needs a secret (sk_) key.")


@pytest.mark.parametrize("name", PUBLIC)
def test_a_public_description_does_not_claim_a_secret_key(name: str) -> None:
    assert "Needs a secret (sk_) key." not in TOOLS_BY_NAME[name].description
