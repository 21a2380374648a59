"""The tool catalogue as an interface: names, annotations, input schemas and descriptions, as listed on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import open_harness

from drip_mcp.tools import TOOLS, TOOLS_BY_NAME

pytestmark = pytest.mark.anyio

DESIGN_CATALOGUE = (
    "drip_track_usage",
    "drip_track_usage_batch",
    "drip_list_meters",
    "drip_estimate_cost",
    "drip_estimate_from_usage",
    "drip_record_run",
    "drip_start_run",
    "drip_emit_event",
    "drip_emit_events_batch",
    "drip_end_run",
    "drip_get_run",
    "drip_get_run_timeline",
    "drip_create_workflow",
    "drip_list_workflows",
    "drip_charge",
    "drip_get_balance",
    "drip_get_charge",
    "drip_list_charges",
    "drip_checkout",
    "drip_create_customer",
    "drip_get_customer",
    "drip_list_customers",
    "drip_create_webhook",
    "drip_list_webhooks",
    "drip_get_webhook",
    "drip_delete_webhook",
    "drip_test_webhook",
    "drip_rotate_webhook_secret",
    "drip_ping",
)
READ_TOOLS = (
    "drip_list_meters",
    "drip_estimate_cost",
    "drip_estimate_from_usage",
    "drip_get_run",
    "drip_get_run_timeline",
    "drip_list_workflows",
    "drip_get_balance",
    "drip_get_charge",
    "drip_list_charges",
    "drip_get_customer",
    "drip_list_customers",
    "drip_list_webhooks",
    "drip_get_webhook",
    "drip_ping",
    "drip_list_entitlement_plans",
    "drip_get_entitlement_plan",
    "drip_list_entitlement_rules",
    "drip_get_customer_entitlement",
    "drip_list_subscriptions",
    "drip_get_subscription",
    "drip_list_contracts",
    "drip_get_contract",
)
DESTRUCTIVE_TOOLS = (
    "drip_charge",
    "drip_charge_async",
    "drip_refund_charge",
    "drip_remove_customer_spending_cap",
    "drip_delete_webhook",
    "drip_rotate_webhook_secret",
    "drip_delete_entitlement_plan",
    "drip_delete_entitlement_rule",
    "drip_cancel_subscription",
    "drip_delete_contract",
    "drip_remove_contract_override",
)
# HTTP DELETE is idempotent by itself and carries no body to hold an idempotencyKey.
NO_KEY_NEEDED: tuple[str, ...] = (
    "drip_remove_customer_spending_cap",
    "drip_delete_entitlement_plan",
    "drip_delete_entitlement_rule",
    "drip_delete_contract",
    "drip_remove_contract_override",
)
# Tools whose `quantity` is billable or metered usage (must be > 0); run events allow 0.
USAGE_QUANTITY_TOOLS = (
    "drip_track_usage",
    "drip_track_usage_batch",
    "drip_estimate_cost",
    "drip_charge",
    "drip_charge_async",
)
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


@pytest.fixture(scope="module")
def wire_tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """tools/list over JSON-RPC (legacy mode), as wire dicts (camelCase)."""
    import anyio

    async def fetch() -> dict[str, dict[str, Any]]:
        listed: dict[str, dict[str, Any]] = {}
        for surface in ("full", "core"):  # every operation, then the catalogue tools
            async with open_harness(Path(tmp_path_factory.mktemp(surface)), "legacy", surface=surface) as h:
                tools = (await h.mcp.list_tools()).tools
            listed.update((t.name, t.model_dump(by_alias=True, mode="json")) for t in tools if t.name not in listed)
        return listed

    return anyio.run(fetch)


def _objects(schema: Any, where: str = "(top)") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema inside an input schema (portable schemas inline nested models), with its path."""
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            yield where, schema
            for name, prop in schema["properties"].items():
                yield from _objects(prop, f"{where}.{name}" if where != "(top)" else name)
        for key in ("items", "anyOf"):
            value = schema.get(key)
            for item in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
                yield from _objects(item, where)


def _property(schema: dict[str, Any], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, obj in _objects(schema):
        if name in obj["properties"]:
            yield where, obj["properties"][name]


def _enum_of(prop: dict[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    for option in prop.get("anyOf", []):
        if "enum" in option:
            return list(option["enum"])
    return None


# --- names --------------------------------------------------------------------------------------------------


def test_every_design_catalogue_tool_is_registered() -> None:
    missing = [n for n in DESIGN_CATALOGUE if n not in TOOLS_BY_NAME]
    assert missing == []


def test_every_tool_name_is_drip_prefixed_snake_case() -> None:
    for name in TOOLS_BY_NAME:
        assert name.startswith("drip_")
        assert name == name.lower()
        assert " " not in name


def test_the_wire_lists_the_registry_in_order(wire_tools: dict[str, dict[str, Any]]) -> None:
    assert list(wire_tools) == list(TOOLS_BY_NAME)


# --- annotations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_every_tool_sets_all_four_annotations_explicitly_on_the_wire(
    wire_tools: dict[str, dict[str, Any]], name: str
) -> None:
    annotations = wire_tools[name]["annotations"]
    assert annotations is not None
    for hint in HINTS:
        assert isinstance(annotations.get(hint), bool), (name, hint, annotations)
    assert annotations["title"] == TOOLS_BY_NAME[name].title


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_wire_annotations_match_the_registry(wire_tools: dict[str, dict[str, Any]], name: str) -> None:
    spec = TOOLS_BY_NAME[name]
    annotations = wire_tools[name]["annotations"]
    assert (
        annotations["readOnlyHint"],
        annotations["destructiveHint"],
        annotations["idempotentHint"],
        annotations["openWorldHint"],
    ) == (spec.read_only, spec.destructive, spec.idempotent, spec.open_world)


@pytest.mark.parametrize("name", DESTRUCTIVE_TOOLS)
def test_money_moving_and_deleting_tools_are_destructive(wire_tools: dict[str, dict[str, Any]], name: str) -> None:
    annotations = wire_tools[name]["annotations"]
    assert annotations["destructiveHint"] is True
    assert annotations["readOnlyHint"] is False


def test_drip_charge_is_not_idempotent_without_a_key(wire_tools: dict[str, dict[str, Any]]) -> None:
    assert wire_tools["drip_charge"]["annotations"]["idempotentHint"] is False


@pytest.mark.parametrize("name", READ_TOOLS)
def test_read_tools_are_read_only_and_not_destructive(wire_tools: dict[str, dict[str, Any]], name: str) -> None:
    annotations = wire_tools[name]["annotations"]
    assert annotations["readOnlyHint"] is True
    assert annotations["destructiveHint"] is False
    assert annotations["idempotentHint"] is True


def test_no_read_only_tool_is_destructive() -> None:
    assert [t.name for t in TOOLS if t.read_only and t.destructive] == []


# --- input schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [t.name for t in TOOLS if not t.read_only and t.name not in NO_KEY_NEEDED])
def test_every_mutating_tool_takes_an_optional_idempotency_key(name: str) -> None:
    spec = TOOLS_BY_NAME[name]
    if name == "drip_call_operation":
        assert "idempotency_key" not in spec.input_schema["properties"]  # the called operation takes its own
        return
    found = list(_property(spec.input_schema, "idempotency_key"))
    if name == "drip_track_usage_batch":
        # Each usage event carries its own key (the batch is many independent writes).
        assert [where for where, _prop in found] == ["events"]
    else:
        assert "idempotency_key" in spec.input_schema["properties"]
    for _where, prop in found:
        assert {"type": "null"} in prop["anyOf"]  # optional: null means "make one for me"
    assert '"idempotency_key"' in json.dumps(spec.output_schema), name  # echoed in the result


def test_tools_without_an_idempotency_key_are_idempotent_by_themselves() -> None:
    for name in NO_KEY_NEEDED:
        spec = TOOLS_BY_NAME[name]
        assert spec.idempotent is True
        assert "idempotency_key" not in spec.input_schema["properties"]


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_every_input_model_refuses_unknown_properties_and_its_schema_lists_every_property(name: str) -> None:
    """The server refuses undeclared keys (the model); the schema requires exactly what the model requires (clients
    such as openai-agents refuse a call that leaves out a "required" key) and carries no boolean
    additionalProperties (google-genai's converter crashes on it)."""
    spec = TOOLS_BY_NAME[name]
    assert spec.input_model.model_config.get("extra") in ("forbid", "allow")
    schema = spec.input_schema
    assert schema["type"] == "object"
    needed = {n for n, f in spec.input_model.model_fields.items() if f.is_required()}
    assert set(schema["required"]) == needed
    for _where, obj in _objects(schema):
        assert set(obj["required"]) <= set(obj["properties"])
        assert "additionalProperties" not in obj


@pytest.mark.parametrize("name", USAGE_QUANTITY_TOOLS)
def test_usage_quantities_must_be_strictly_positive(name: str) -> None:
    spec = TOOLS_BY_NAME[name]
    found = list(_property(spec.input_schema, "quantity"))
    assert found, name
    for _where, prop in found:
        assert prop["type"] == "number"
        assert prop["minimum"] == 0
        assert "greater than 0" in prop["description"]  # exclusiveMinimum is not portable: said in words


def test_every_quantity_field_is_bounded_below() -> None:
    for spec in TOOLS:
        for where, prop in _property(spec.input_schema, "quantity"):
            options = prop.get("anyOf", [prop])
            numeric = [o for o in options if o.get("type") == "number"]
            assert numeric, (spec.name, where)
            for option in numeric:
                assert option.get("minimum") == 0, (spec.name, where, option)


def test_every_status_input_is_an_enum() -> None:
    seen = 0
    for spec in TOOLS:
        for where, prop in _property(spec.input_schema, "status"):
            if where.endswith("metadata"):
                continue  # the metadata allowlist's free-text `status` (e.g. 'ok', 'timeout')
            seen += 1
            assert _enum_of(prop), (spec.name, where, prop)
    assert seen >= 3


def test_run_status_inputs_offer_exactly_the_terminal_statuses() -> None:
    for name in ("drip_end_run", "drip_record_run"):
        [(_where, prop)] = [(w, p) for w, p in _property(TOOLS_BY_NAME[name].input_schema, "status") if w == "(top)"]
        assert _enum_of(prop) == ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_every_tool_has_an_output_schema_in_the_manifest_but_none_on_the_wire(
    wire_tools: dict[str, dict[str, Any]], name: str
) -> None:
    output = TOOLS_BY_NAME[name].output_schema
    assert output["type"] == "object"
    assert "outputSchema" not in wire_tools[name] or wire_tools[name]["outputSchema"] is None


# --- descriptions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_every_tool_has_a_title_and_a_substantial_description(wire_tools: dict[str, dict[str, Any]], name: str) -> None:
    tool = wire_tools[name]
    assert tool["title"]
    assert len(tool["description"]) >= 30


def test_drip_charge_description_warns_that_money_moves() -> None:
    description = TOOLS_BY_NAME["drip_charge"].description.lower()
    assert "money" in description
    assert "dry_run" in description
    assert "idempotency_key" in description


def test_drip_track_usage_description_says_no_money_moves() -> None:
    description = TOOLS_BY_NAME["drip_track_usage"].description.lower()
    assert "does not charge" in description or "no money" in description


@pytest.mark.parametrize("name", sorted(n for n, t in TOOLS_BY_NAME.items() if t.toolset == "webhooks"))
def test_secret_only_tool_descriptions_say_an_sk_key_is_needed(name: str) -> None:
    assert "sk_" in TOOLS_BY_NAME[name].description


# --- outputs built from wire models -----------------------------------------------------------------------


def test_from_wire_refuses_to_drop_a_wire_field_without_a_reason() -> None:
    from drip_mcp.api.models import Customer
    from drip_mcp.tools.base import from_wire
    from drip_mcp.tools.customers import CustomerInfo

    wire = Customer(id="c1", created_at="2026-01-01T00:00:00Z", email="jane@example.com")
    with pytest.raises(TypeError) as refused:
        from_wire(CustomerInfo, wire)
    assert "email" in str(refused.value)
    shown = from_wire(CustomerInfo, wire, omit={"email": "PII", "updated_at": "not needed"})
    assert "email" not in shown.model_dump()


@pytest.mark.parametrize("name", list(TOOLS_BY_NAME))
def test_every_input_model_declares_a_property_so_no_schema_needs_a_placeholder(name: str) -> None:
    """A tool without arguments would need a stand-in property to pass both OpenAI strict and Gemini's
    converter; every tool has at least one real (optional) argument instead."""
    assert TOOLS_BY_NAME[name].input_model.model_fields, name
    assert "_unused" not in TOOLS_BY_NAME[name].input_schema["properties"]
