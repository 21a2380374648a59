"""`drip_mcp.portable_schema`: every tool's schema, transformed, passes every converter and stays honest.

Honest: arguments a strict client produces from the transformed schema are accepted by the tool's pydantic
input model (after `strip_placeholders`, which the server must apply). Known gaps, by design: a number
``exclusiveMinimum`` becomes ``minimum`` (the boundary value is refused by the server with INVALID_INPUT),
and objects are left without ``additionalProperties`` (google-genai crashes on the boolean; strict OpenAI
and Gemini never send undeclared keys).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from compat_converters import CONVERTERS, listed_tools
from mcp_types import Tool

from drip_mcp.portable_schema import PLACEHOLDER_PROPERTY, portable_input_schema, strip_placeholders
from drip_mcp.tools import TOOLS_BY_NAME


@pytest.fixture(scope="module")
def tools() -> dict[str, Tool]:
    return listed_tools()


def _portable(tool: Tool) -> Tool:
    """The tool as listed: its input schema is `portable_input_schema` of its model's schema already."""
    return tool


@pytest.mark.parametrize("name", sorted(TOOLS_BY_NAME))
def test_portable_schema_is_already_strict_for_openai(tools: dict[str, Tool], name: str) -> None:
    """Nothing openai-agents' strict conversion refuses; it closes the objects and requires every key itself."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node
            assert "$defs" not in node
            assert "title" not in node
            assert "exclusiveMinimum" not in node
            assert "exclusiveMaximum" not in node
            assert not isinstance(node.get("additionalProperties"), bool)
            free_form = name == "drip_call_operation" and "properties" not in node  # its free-form `arguments`
            if node.get("type") == "object" and not free_form:
                assert node["properties"], node
                assert set(node["required"]) <= set(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_portable(tools[name]).input_schema)


def test_input_is_not_mutated() -> None:
    original = TOOLS_BY_NAME["drip_record_run"].input_model.model_json_schema()
    snapshot = json.dumps(original, sort_keys=True)
    portable_input_schema(original)
    assert json.dumps(original, sort_keys=True) == snapshot


NULL_METADATA = {"model": None, "tool": None, "status": None, "latency_ms": None, "count": None}
METADATA = {"model": "gpt-4o", "tool": "search", "status": "ok", "latency_ms": 812.5, "count": 3}

# Arguments as a strict client fills them in from the transformed schema: every property present.
ARGUMENT_SETS: list[tuple[str, dict[str, Any]]] = [
    ("drip_list_meters", {"meter": None}),
    ("drip_ping", {"include_tools": False}),
    ("drip_list_customers", {"limit": 20, "offset": 0, "status": None}),
    ("drip_list_customers", {"limit": 5, "offset": 10, "status": "ACTIVE"}),
    (
        "drip_track_usage",
        {
            "customer_id": "cus_1",
            "meter": "api_calls",
            "quantity": 3,
            "units": None,
            "description": None,
            "metadata": None,
            "idempotency_key": None,
        },
    ),
    (
        "drip_track_usage",
        {
            "customer_id": "cus_1",
            "meter": "tokens",
            "quantity": 0.5,
            "units": "tokens",
            "description": "summarise",
            "metadata": METADATA,
            "idempotency_key": "retry-1",
        },
    ),
    (
        "drip_create_customer",
        {"external_customer_id": "user-1", "onchain_address": None, "metadata": NULL_METADATA, "idempotency_key": None},
    ),
    ("drip_estimate_cost", {"items": [{"meter": "api_calls", "quantity": 10, "unit_price_override": None}]}),
    (
        "drip_record_run",
        {
            "customer_id": "cus_1",
            "workflow": "research_agent",
            "events": [
                {
                    "event_type": "llm_call",
                    "quantity": 1200,
                    "units": "tokens",
                    "description": None,
                    "cost_units": None,
                    "metadata": METADATA,
                    "idempotency_key": None,
                    "run_id": None,
                }
            ],
            "status": "COMPLETED",
            "error_message": None,
            "error_code": None,
            "external_run_id": None,
            "correlation_id": None,
            "metadata": None,
            "idempotency_key": None,
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "arguments"), ARGUMENT_SETS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ARGUMENT_SETS)]
)
def test_arguments_valid_for_the_portable_schema_are_accepted_by_the_model(
    tools: dict[str, Tool], name: str, arguments: dict[str, Any]
) -> None:
    schema = _portable(tools[name]).input_schema
    # Fill in any property the set above leaves out with null, as a strict client would (and check it may).
    full = {key: arguments.get(key) for key in schema["properties"]}
    jsonschema.validate(full, schema)
    TOOLS_BY_NAME[name].input_model.model_validate(strip_placeholders(full))


@pytest.mark.parametrize("name", sorted(TOOLS_BY_NAME))
def test_all_null_arguments_that_the_schema_allows_are_accepted(tools: dict[str, Tool], name: str) -> None:
    """Every property whose portable schema admits null is sent as null: the model must take it."""
    schema = _portable(tools[name]).input_schema
    nullable = {
        key: None
        for key, prop in schema["properties"].items()
        if any(v.get("type") == "null" for v in prop.get("anyOf", []))
    }
    model = TOOLS_BY_NAME[name].input_model
    for key in nullable:
        field = model.model_fields.get(key)
        assert key == PLACEHOLDER_PROPERTY or (field is not None and not field.is_required()), (name, key)
    required = [key for key in schema["properties"] if key not in nullable]
    if not required:
        model.model_validate(strip_placeholders(nullable))


def test_exclusive_bounds() -> None:
    schema = portable_input_schema(
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                "x": {"type": "number", "exclusiveMinimum": 0, "description": "Amount"},
            },
            "required": ["n", "x"],
        }
    )
    assert schema["properties"]["n"] == {"type": "integer", "minimum": 1, "maximum": 9}
    assert schema["properties"]["x"] == {
        "type": "number",
        "minimum": 0,
        "description": "Amount. Must be greater than 0.",
    }


def test_metadata_can_be_dropped_instead() -> None:
    schema = portable_input_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "metadata": {"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]},
            },
            "required": ["a"],
        },
        open_object_properties=None,
    )
    assert schema == {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


NO_ARG_SHAPES: list[tuple[str, dict[str, Any], bool, bool]] = [
    # (id, inputSchema, accepted strictly by openai-agents, accepted by mcp_to_gemini_tool)
    ("pydantic-closed", {"type": "object", "properties": {}, "additionalProperties": False}, True, False),
    ("open-empty-properties", {"type": "object", "properties": {}}, False, True),
    ("bare-object", {"type": "object"}, False, True),
    ("one-optional-nullable-property", portable_input_schema({"type": "object", "properties": {}}), True, True),
]


@pytest.mark.parametrize(("schema", "openai_ok", "gemini_ok"), [pytest.param(*s[1:], id=s[0]) for s in NO_ARG_SHAPES])
def test_shapes_for_a_tool_without_arguments(schema: dict[str, Any], openai_ok: bool, gemini_ok: bool) -> None:
    """Only one declared optional property passes both (``{}`` would too, but MCP requires type object)."""
    tool = Tool(name="t", description="d", input_schema=schema)
    assert (CONVERTERS["openai_strict"](tool) is None) is openai_ok
    assert (CONVERTERS["gemini_mcp_to_gemini_tool"](tool) is None) is gemini_ok


KEY_VALUE_METADATA = {
    "type": "object",
    "properties": {
        "metadata": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]},
                },
                "required": ["key", "value"],
            },
        }
    },
    "required": ["metadata"],
}


@pytest.mark.parametrize("converter", sorted(CONVERTERS))
def test_key_value_pairs_metadata_shape_converts(converter: str) -> None:
    """The alternative free-form shape; it needs the server to turn the pairs back into a dict."""
    tool = Tool(name="t", description="d", input_schema=KEY_VALUE_METADATA)
    assert CONVERTERS[converter](tool) is None


def test_tools_list_size(tools: dict[str, Tool]) -> None:
    """Report the wire size of tools/list for a pk_ key, before and after the transform (printed with -s)."""
    public = [tools[name] for name in sorted(tools) if TOOLS_BY_NAME[name].scope.value == "public"]
    assert public
    before = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in public]
    after = [_portable(t).model_dump(by_alias=True, mode="json", exclude_none=True) for t in public]
    print(f"\ntools/list ({len(public)} pk_ tools): before {len(json.dumps(before))} after {len(json.dumps(after))}")
