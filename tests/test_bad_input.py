"""Bad input: every tool answers any arguments with a result or a structured error (issue 6).

A small JSON-Schema -> Hypothesis generator turns each tool's published
``input_schema`` into arguments that are mostly valid, sometimes wrong (wrong
types, out-of-range numbers, NaN and infinities, empty, over-long and 100k
strings, odd unicode, missing required and unknown fields, depth-50 and 1 MB
metadata, too many items). Every call goes through one long-lived in-process
MCP client (the `h` fixture is entered once per test function; Hypothesis runs
every example on the same event loop) against the sandbox, behind a recording
transport. The oracle for "valid" is the tool's own pydantic model applied to
the arguments *as the MCP client sends them* (JSON: NaN and infinities become
``null``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timezone
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from mcp_types import CallToolRequest, CallToolRequestParams
from pydantic import ValidationError
from server_fixtures import ERROR_KEYS, Harness, assert_ok, open_harness, result_payload

from drip_mcp.api import retrying
from drip_mcp.tools import TOOLS, TOOLS_BY_NAME

pytestmark = pytest.mark.anyio

MAX_QUANTITY = 10**9  # the operator's --max-quantity in this harness: 1e9 < q <= 1e12 is QUANTITY_LIMIT_EXCEEDED
CALL_TIMEOUT_S = 10
LOCAL_REFUSALS = {"VALIDATION_ERROR", "METADATA_REJECTED", "QUANTITY_LIMIT_EXCEEDED"}

# Placeholders for ids that exist in the sandbox; `h_ids` swaps them in before each call.
CUSTOMER, RUN, WEBHOOK, CHARGE = "@customer", "@run", "@webhook", "@charge"
WORKFLOW, EVENT, CAP, DELIVERY = "@workflow", "@event", "@cap", "@delivery"
CORRELATION = "corr-bad-input"  # a real correlation id (the fixture's run carries it), not a placeholder
PLAN, RULE, SUBSCRIPTION, CONTRACT = "@plan", "@rule", "@subscription", "@contract"
KNOWN: dict[str, list[Any]] = {
    "customer_id": [CUSTOMER],
    "run_id": [RUN],
    "webhook_id": [WEBHOOK],
    "charge_id": [CHARGE],
    "workflow_id": [WORKFLOW],
    "event_id": [EVENT],
    "cap_id": [CAP],
    "delivery_id": [DELIVERY],
    "correlation_id": [CORRELATION],
    "plan_id": [PLAN],
    "rule_id": [RULE],
    "subscription_id": [SUBSCRIPTION],
    "contract_id": [CONTRACT],
    "batch_id": ["bat_" + "0" * 24],  # well-formed; drip_get_batch answers NOT_FOUND, a structured error
    "meter": ["api_calls", "tokens"],
    "unit_type": ["api_calls", "tokens"],
    "feature_key": ["api_calls"],
    "workflow": ["research_agent"],
    "url": ["http://127.0.0.1:9/drip"],  # loopback: the sandbox refuses other webhook hosts by default
    "return_url": ["https://example.com/done"],
}

# --- hostile values ------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
HUGE = "x" * 100_000
ODD_UNICODE = [
    "\u200f",  # right-to-left mark
    "\u202eevil\u202c",  # right-to-left override
    "a\u200db",  # zero-width joiner
    "\u200b",  # zero-width space
    "\ufeff",  # BOM
    "👨\u200d👩\u200d👧",  # emoji ZWJ sequence
    "😀" * 60,
    "\x00",
    "a\x00b",
    "e\u0301" * 30,  # combining accents
    "١٢٣",  # Arabic-Indic digits
    "   ",
    "\t\n",
]
NUMERIC_STRINGS = ["5", "-1", "0", "NaN", "Infinity", "-Infinity", "1e5000", "1e-5000", "0x10", "1_000"]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = nested(50)
DEEP_LIST = nested_list(50)
MEGA_BLOB = {"blob": "y" * 1_000_000}  # 1 MB in one string
MEGA_KEYS = {f"k{i:05d}": "v" * 40 for i in range(20_000)}  # ~1 MB in 20k keys

NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    1.5,
    NAN,
    INF,
    -INF,
    2**64,
    -(2**70),
    10**13,
    1e308,
    "",
    HUGE,
    *ODD_UNICODE,
    *NUMERIC_STRINGS,
    [],
    [1, "a", None],
    {},
    {"a": 1},
    DEEP,
    DEEP_LIST,
    MEGA_BLOB,
    MEGA_KEYS,
]
nasty = st.sampled_from(NASTY)
small_text = st.text(max_size=12)


# --- JSON Schema -> strategies ---------------------------------------------------------------------


def resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return resolve(defs[ref.rsplit("/", 1)[-1]], defs)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False), small_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(small_text, inner, max_size=3),
    max_leaves=8,
)
metadata_values = st.dictionaries(
    st.sampled_from(["model", "tool", "status", "latency_ms", "tokens", "note", "k"]) | small_text,
    json_values,
    max_size=4,
)


def string_strategy(schema: dict[str, Any], name: str) -> st.SearchStrategy[str]:
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10_000)
    if schema.get("format") == "date-time":
        return st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.isoformat())
    pattern = schema.get("pattern")
    if pattern:
        base: st.SearchStrategy[str] = st.from_regex(pattern, fullmatch=True)
    else:
        base = st.text(min_size=lo, max_size=min(hi, 24))
    edges = [
        s for s in ("a" * max(lo, 1), "a" * hi) if lo <= len(s) <= hi and (not pattern or re.fullmatch(pattern, s))
    ]
    options = [base.filter(lambda s: lo <= len(s) <= hi)]
    if edges:
        options.append(st.sampled_from(edges))
    if name in KNOWN:
        options.insert(0, st.sampled_from(KNOWN[name]))
    return st.one_of(options)


def number_strategy(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    excl_lo, excl_hi = "exclusiveMinimum" in schema, "exclusiveMaximum" in schema
    if integer:
        return st.integers(
            min_value=None if lo is None else lo + excl_lo, max_value=None if hi is None else hi - excl_hi
        )
    floats = st.floats(
        min_value=lo, max_value=hi, exclude_min=excl_lo, exclude_max=excl_hi, allow_nan=False, allow_infinity=False
    )
    ints = st.integers(
        min_value=None if lo is None else int(lo) + 1 if excl_lo else int(lo),
        max_value=None if hi is None else int(hi) - 1 if excl_hi else int(hi),
    )
    return st.one_of(ints, floats)


def valid(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values the schema accepts (the pydantic model is still the oracle)."""
    schema = resolve(schema, defs)
    if "anyOf" in schema:
        return st.one_of([valid(s, defs, name) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        return string_strategy(schema, name)
    if kind in ("number", "integer"):
        return number_strategy(schema, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        lo = schema.get("minItems", 0)
        hi = min(schema.get("maxItems", 3), max(lo, 3))
        return st.lists(valid(schema.get("items", {}), defs, name.removesuffix("s")), min_size=lo, max_size=hi)
    if kind == "object" and "properties" in schema:
        return objects(schema, defs, clean=True)
    if kind == "object":
        return metadata_values
    return json_values


def invalid(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values aimed at the schema's edges: wrong types, out of range, too long or short, bad patterns."""
    schema = resolve(schema, defs)
    options: list[st.SearchStrategy[Any]] = [nasty]
    branches = [resolve(s, defs) for s in schema.get("anyOf", [schema])]
    for branch in branches:
        kind = branch.get("type")
        if kind == "string":
            lo, hi = branch.get("minLength", 0), branch.get("maxLength")
            bad = [12345, 1.5, True, ["a"], {"a": "b"}, "bad id!", "has space", "\u200f\u200d", "😀"]
            if lo:
                bad.append("")
            if hi is not None:
                bad.append("a" * (hi + 1))
            options.append(st.sampled_from(bad))
            if "enum" in branch:
                options.append(st.sampled_from([e.lower() for e in branch["enum"]] + [e + " " for e in branch["enum"]]))
        elif kind in ("number", "integer"):
            bad = ["5", True, NAN, INF, -INF, 0, -1, -0.0, 1e-300, 5e-324, "1e5000", None]
            if "maximum" in branch:
                bad += [branch["maximum"] + 1, branch["maximum"] * 10]
            if "minimum" in branch:
                bad.append(branch["minimum"] - 1)
            if kind == "integer":
                bad += [1.5, 2**64, "10"]
            options.append(st.sampled_from(bad))
        elif kind == "boolean":
            options.append(st.sampled_from(["true", "yes", 1, 0, None, []]))
        elif kind == "array":
            item = branch.get("items", {})
            too_many = branch.get("maxItems", 0) + 1 if "maxItems" in branch else None
            options.append(st.sampled_from(["not a list", {"0": 1}, [[[]]], DEEP_LIST]))
            options.append(st.lists(invalid(item, defs), min_size=1, max_size=2))
            if branch.get("minItems"):
                options.append(st.just([]))
            if too_many is not None:
                options.append(valid(item, defs).map(partial(repeat, times=too_many)))
        elif kind == "object":
            options.append(st.sampled_from(["{}", [], DEEP, MEGA_BLOB, MEGA_KEYS, {"n": DEEP}, {"blob": HUGE}]))
            if "properties" in branch:
                options.append(objects(branch, defs, clean=False))
    return st.one_of(options)


def repeat(value: Any, times: int) -> list[Any]:
    return [value] * times


def field_value(schema: dict[str, Any], defs: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    """Mostly valid; 1 in 5 an edge case. Shrinks toward valid."""
    return st.integers(0, 9).flatmap(lambda k: valid(schema, defs, name) if k < 8 else invalid(schema, defs, name))


EITHER = ("customer_id", "external_customer_id")
EXTRA_NAMES = st.sampled_from(["extra", "customerId", "__proto__", "quantity ", "\u200fmeter", "", "a" * 300])


@st.composite
def objects(draw: st.DrawFn, schema: dict[str, Any], defs: dict[str, Any], *, clean: bool) -> dict[str, Any]:
    """An object for `schema`; unless `clean`, fields may be wrong, required ones missing, unknown ones added."""
    required = set(schema.get("required", []))
    out: dict[str, Any] = {}
    for prop, sub in schema.get("properties", {}).items():
        if prop in required:
            if not clean and draw(st.integers(0, 11)) == 0:
                continue  # a missing required field
        elif not draw(st.booleans()):
            continue
        out[prop] = draw(valid(sub, defs, prop) if clean else field_value(sub, defs, prop))
    properties = schema.get("properties", {})
    if clean and set(EITHER) <= properties.keys() and not set(EITHER) & required:
        # A schema cannot say "exactly one of"; a clean object names the customer one way (drip_track_usage).
        for prop in EITHER:
            out.pop(prop, None)
        prop = draw(st.sampled_from(EITHER))
        out[prop] = draw(valid(properties[prop], defs, prop).filter(lambda v: v is not None))
    if not clean and draw(st.integers(0, 7)) == 0:
        out[draw(EXTRA_NAMES)] = draw(nasty | json_scalars)
    return out


def arguments_for(spec_name: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = TOOLS_BY_NAME[spec_name].input_schema
    defs = schema.get("$defs", {})
    return st.booleans().flatmap(lambda clean: objects(schema, defs, clean=clean))


tool_calls = st.sampled_from([t.name for t in TOOLS]).flatmap(
    lambda name: st.tuples(st.just(name), arguments_for(name))
)


# --- the harness and the properties ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Any:
    """Retries (5xx from a hostile input) happen without real sleeping."""
    before = not retrying.sleeping_enabled()
    retrying.set_testing(True)
    yield
    retrying.set_testing(before)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, max_quantity=MAX_QUANTITY) as harness:
        customer_id = await harness.new_customer("bad-input-user")
        run = await harness.ok(
            "drip_start_run", {"customer_id": customer_id, "workflow": "research_agent", "correlation_id": CORRELATION}
        )
        await harness.ok("drip_emit_event", {"run_id": run["run_id"], "event_type": "llm_call"})
        webhook = await harness.new_webhook()
        await harness.ok("drip_test_webhook", {"webhook_id": webhook["webhook"]["id"]})
        [delivery] = harness.store.webhook_deliveries(webhook["webhook"]["id"], limit=1)
        charge = await harness.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
        cap = await harness.ok(
            "drip_set_customer_spending_cap",
            {"customer_id": customer_id, "cap_type": "MONTHLY_CHARGE_LIMIT", "limit_value": 1000},
        )
        plan = await harness.ok("drip_create_entitlement_plan", {"name": "Bad input", "slug": "bad-input"})
        rule_args = {"feature_key": "api_calls", "limit_type": "COUNT", "period": "DAILY", "limit_value": 1000}
        rule = await harness.ok("drip_add_entitlement_rule", {"plan_id": plan["id"], **rule_args})
        sub_args = {"customer_id": customer_id, "name": "Bad input", "interval": "MONTHLY", "price_usdc": 1}
        subscription = await harness.ok("drip_create_subscription", sub_args)
        contract_args = {"customer_id": customer_id, "name": "Bad input", "start_date": "2020-01-01"}
        contract = await harness.ok("drip_create_contract", contract_args)
        harness.known = {  # type: ignore[attr-defined]
            CUSTOMER: customer_id,
            RUN: run["run_id"],
            WEBHOOK: webhook["webhook"]["id"],
            CHARGE: charge["charge_id"],
            WORKFLOW: run["workflow_id"],
            EVENT: charge["usage_event_id"],
            CAP: cap["id"],
            DELIVERY: delivery["id"],
            PLAN: plan["id"],
            RULE: rule["id"],
            SUBSCRIPTION: subscription["id"],
            CONTRACT: contract["id"],
        }
        harness.transport.sent.clear()
        yield harness


def with_known_ids(value: Any, known: dict[str, str]) -> Any:
    if isinstance(value, str):
        return known.get(value, value)
    if isinstance(value, dict):
        return {k: with_known_ids(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [with_known_ids(v, known) for v in value]
    return value


def as_sent(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the MCP client puts them on the wire (JSON mode: NaN/±inf become null)."""
    request = CallToolRequest(params=CallToolRequestParams(name=name, arguments=arguments))
    sent: dict[str, Any] = request.model_dump(by_alias=True, mode="json", exclude_none=True)["params"]["arguments"]
    return sent


def loc_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(arguments)"


def describe(name: str, arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, default=repr)
    return f"{name}({text[:300]}{'…' if len(text) > 300 else ''})"


def check_error_shape(result: Any, where: str) -> dict[str, Any]:
    structured = result_payload(result)
    assert isinstance(structured, dict), where
    assert set(structured) == {"error"}, where
    error: dict[str, Any] = structured["error"]
    assert set(error) >= ERROR_KEYS, (where, error)
    for key in ("code", "message"):
        assert isinstance(error[key], str), (where, error)
        assert error[key], (where, error)
    assert isinstance(error["retryable"], bool), (where, error)
    assert error["hint"] is None or isinstance(error["hint"], str), (where, error)
    assert len(result.content) == 1, where
    text = result.content[0].text
    assert json.loads(text) == structured, where
    for needle in ("Error executing tool", "Traceback"):
        assert needle not in text, (where, error)
    assert error["code"] != "INTERNAL_ERROR", f"{where} crashed inside drip-mcp: {error}"
    return error


async def call_and_check(h: Harness, name: str, arguments: dict[str, Any]) -> Any:
    """One call; the properties every call must satisfy, given whether the tool's model accepts the input."""
    arguments = with_known_ids(arguments, h.known)  # type: ignore[attr-defined]
    where = describe(name, arguments)
    spec = TOOLS_BY_NAME[name]
    try:
        spec.input_model.model_validate(as_sent(name, arguments))
        model_errors: list[str] = []
    except ValidationError as exc:
        model_errors = [loc_path(e["loc"]) for e in exc.errors(include_url=False, include_input=False)]
    before = len(h.sent)
    try:
        with anyio.fail_after(CALL_TIMEOUT_S):
            result = await h.call(name, arguments)  # raises on a JSON-RPC error: that fails the test
    except TimeoutError:
        pytest.fail(f"{where} did not answer within {CALL_TIMEOUT_S} s")
    sent = h.sent[before:]
    outcome = result_payload(result)["error"]["code"] if result.is_error else "ok"
    if currently_in_test_context():  # see them with --hypothesis-show-statistics
        event(f"{name}: {'invalid' if model_errors else 'valid'} -> {outcome}")

    if model_errors:
        assert result.is_error, f"{where} was accepted, but {spec.input_model.__name__} refuses it: {model_errors}"
        error = check_error_shape(result, where)
        assert error["code"] in LOCAL_REFUSALS, (where, error)
        reported = {d.get("path") for d in error.get("details", [])}
        assert set(model_errors) <= reported, (where, model_errors, error)
        assert model_errors[0] in error["message"], (where, error)  # the message names the field too
        assert sent == [], f"{where} was refused, yet sent {[r.route for r in sent]}"
        return result
    if result.is_error:
        error = check_error_shape(result, where)
        assert (error["status"] or 0) < 500, f"{where}: valid input, yet the sandbox failed: {error}"
        if "nothing was sent" in f"{error['message']} {error['hint']}":
            writes = [r.route for r in sent if r.method != "GET"]
            assert writes == [], f"{where} says nothing was sent, yet sent {writes}"
        return result
    assert_ok(name, result, api_key=h.api_key)
    return result


async def assert_still_answers(h: Harness) -> None:
    ping = await h.ok("drip_ping", {})
    assert ping["ok"] is True


# --- the property -----------------------------------------------------------------------------------

TRACK = "drip_track_usage"
CHARGE_TOOL = "drip_charge"
RECORD = "drip_record_run"
EMIT_BATCH = "drip_emit_events_batch"


def track(**overrides: Any) -> dict[str, Any]:
    return {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, **overrides}


def record(**overrides: Any) -> dict[str, Any]:
    return {"customer_id": CUSTOMER, "workflow": "research_agent", "events": [{"event_type": "llm_call"}], **overrides}


def emit(**overrides: Any) -> dict[str, Any]:
    return {"run_id": RUN, "events": [{"event_type": "llm_call", "quantity": 1}], **overrides}


def without(args: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != key}


REGRESSIONS: list[tuple[str, dict[str, Any]]] = [
    # drip_track_usage
    (TRACK, track()),
    (TRACK, track(quantity="5")),
    (TRACK, track(quantity=True)),
    (TRACK, track(customer_id=12345)),
    (TRACK, track(quantity=NAN)),
    (TRACK, track(quantity=INF)),
    (TRACK, track(quantity=-INF)),
    (TRACK, track(quantity=0)),
    (TRACK, track(quantity=-1)),
    (TRACK, track(quantity=10**12 + 1)),
    (TRACK, track(quantity=MAX_QUANTITY + 1)),
    (TRACK, track(customer_id="")),
    (TRACK, track(customer_id=HUGE)),
    (TRACK, track(description=HUGE)),
    (TRACK, track(description="\u200f\u202e👨\u200d👩\u200d👧\x00")),
    (TRACK, track(meter="api\u200dcalls")),
    (TRACK, track(metadata=DEEP)),
    (TRACK, track(metadata=MEGA_BLOB)),
    (TRACK, track(metadata=MEGA_KEYS)),
    (TRACK, track(metadata={"model": "gpt-x", "latency_ms": 12.5})),  # a float in metadata is ordinary
    (TRACK, without(track(), "quantity")),
    (TRACK, track(surprise=1)),
    # drip_charge
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "dry_run": True}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": "1"}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "dry_run": "yes"}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": NAN}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": INF}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 0}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": -5}),
    (CHARGE_TOOL, {"customer_id": HUGE, "meter": "api_calls", "quantity": 1}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "", "quantity": 1}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "confirm_token": HUGE}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "😀", "quantity": 1}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "metadata": DEEP}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "metadata": MEGA_BLOB}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "metadata": {"latency_s": 0.25}}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "quantity": 1}),
    (CHARGE_TOOL, {"customer_id": CUSTOMER, "meter": "api_calls", "quantity": 1, "amount": 5}),
    (CHARGE_TOOL, {"customer_id": "cus_missing", "meter": "api_calls", "quantity": 1}),
    # drip_record_run
    (RECORD, record()),
    (RECORD, record(events="llm_call")),
    (RECORD, record(status="completed")),
    (RECORD, record(events=[{"event_type": "llm_call", "quantity": NAN}])),
    (RECORD, record(events=[{"event_type": "llm_call", "quantity": -INF}])),
    (RECORD, record(events=[{"event_type": "llm_call", "quantity": -1}])),
    (RECORD, record(events=[{"event_type": "llm_call", "quantity": 0}])),
    (RECORD, record(events=[{"event_type": "llm_call", "cost_units": "1e5000"}])),
    (RECORD, record(events=[{"event_type": "llm_call", "quantity": "1e5000"}])),
    (RECORD, record(events=[{"event_type": ""}])),
    (RECORD, record(events=[{"event_type": HUGE}])),
    (RECORD, record(error_message=HUGE)),
    (RECORD, record(external_run_id="\u202e\u200d😀\x00")),
    (RECORD, record(metadata=DEEP)),
    (RECORD, record(events=[{"event_type": "llm_call", "metadata": MEGA_KEYS}])),
    (RECORD, record(events=[{"event_type": "llm_call", "nested": DEEP}])),  # extra keys become metadata
    (RECORD, record(events=[{"event_type": "llm_call"}] * 501)),
    (RECORD, record(metadata={"latency_ms": 812.4})),
    (RECORD, record(events=[{"event_type": "llm_call", "metadata": {"temperature": 0.2}}])),
    (RECORD, without(record(), "workflow")),
    (RECORD, record(unknown_field=True)),
    # drip_emit_events_batch
    (EMIT_BATCH, emit()),
    (EMIT_BATCH, emit(events={"event_type": "llm_call"})),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "quantity": NAN}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "quantity": INF}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "quantity": -2}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "quantity": "1e5000"}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "cost_units": "1e5000"}])),
    (EMIT_BATCH, emit(events=[])),
    (EMIT_BATCH, emit(run_id="")),
    (EMIT_BATCH, emit(run_id=HUGE)),
    (EMIT_BATCH, emit(events=[{"event_type": "\u200f\x00👨\u200d👩\u200d👧"}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "metadata": DEEP}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "metadata": MEGA_BLOB}])),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call"}] * 501)),
    (EMIT_BATCH, emit(events=[{"event_type": "llm_call", "metadata": {"latency_ms": 3.5}}])),
    (EMIT_BATCH, without(emit(), "run_id")),  # valid by the model; the tool refuses: no run for the event
    (EMIT_BATCH, without(emit(), "events")),
    (EMIT_BATCH, emit(idempotency_key="has space")),
    (EMIT_BATCH, emit(extra_field=[1, 2, 3])),
    # found by the generator in other tools
    ("drip_estimate_cost", {"items": [{"meter": "api_calls", "quantity": 10**12, "unit_price_override": 10**12}]}),
    ("drip_start_run", {"customer_id": CUSTOMER, "workflow": "never_seen_before", "metadata": DEEP}),
    ("drip_checkout", {"amount_cents": 500, "return_url": "https://example.com]/done", "customer_id": CUSTOMER}),
    # a retried delete of an id too long to be a file name (the secret file is named after it)
    ("drip_delete_webhook", {"webhook_id": "a" * 255, "idempotency_key": "a"}),
    ("drip_delete_webhook", {"webhook_id": "a" * 128, "idempotency_key": "a"}),
]


def _with_regressions(test: Any) -> Any:
    for call in reversed(REGRESSIONS):
        test = example(call=call)(test)
    return test


PROPERTY = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one harness (one MCP client) for the whole run, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@settings(PROPERTY, phases=[Phase.explicit])
@given(call=tool_calls)
@_with_regressions
async def test_fixed_hostile_arguments_get_a_result_or_a_structured_error(
    h: Harness, call: tuple[str, dict[str, Any]]
) -> None:
    """The regression cases, one category each, for the four write tools (and what the generator found)."""
    name, arguments = call
    await call_and_check(h, name, arguments)
    await assert_still_answers(h)


@settings(PROPERTY, max_examples=500, report_multiple_bugs=False)
@given(call=tool_calls)
async def test_every_tool_answers_generated_arguments_with_a_result_or_a_structured_error(
    h: Harness, call: tuple[str, dict[str, Any]]
) -> None:
    name, arguments = call
    await call_and_check(h, name, arguments)
    await assert_still_answers(h)


async def test_every_tool_refuses_an_unknown_field_and_an_empty_argument_object_correctly(h: Harness) -> None:
    """Each tool once with an extra field (always refused), once with {} (refused iff something is required)."""
    for spec in TOOLS:
        refused = await call_and_check(h, spec.name, {"not_a_field": "\u200f\x00"})
        assert refused.is_error
        empty = await call_and_check(h, spec.name, {})
        something_required = any(f.is_required() for f in spec.input_model.model_fields.values())
        assert empty.is_error == something_required or spec.name in {
            "drip_create_customer"  # nothing required by the schema; the tool wants an id or an address
        }
    await assert_still_answers(h)


async def test_generated_arguments_cover_valid_and_invalid_inputs_for_every_tool() -> None:
    """The generator itself: for every tool it yields both model-valid and model-invalid arguments."""
    outcomes: dict[str, set[bool]] = {t.name: set() for t in TOOLS}

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def sample(data: st.DataObject) -> None:
        for spec in TOOLS:
            args = with_known_ids(data.draw(arguments_for(spec.name)), {CUSTOMER: "cus_1", RUN: "run_1"})
            try:
                spec.input_model.model_validate(as_sent(spec.name, args))
                outcomes[spec.name].add(True)
            except ValidationError:
                outcomes[spec.name].add(False)

    sample()
    always_valid = {"drip_list_meters", "drip_list_webhooks", "drip_ping", "drip_session_summary"}
    for name, seen in outcomes.items():
        assert True in seen, f"{name}: the generator never produced valid arguments"
        if name not in always_valid:
            assert False in seen, f"{name}: the generator never produced invalid arguments"


def test_the_wire_form_turns_nan_and_infinities_into_null_so_the_model_sees_null() -> None:
    """Why the oracle uses `as_sent`: NaN never reaches the server over MCP; the null it becomes is refused."""
    sent = as_sent(TRACK, track(quantity=NAN, metadata={"x": INF}))
    assert sent["quantity"] is None
    assert sent["metadata"] == {"x": None}
    with pytest.raises(ValidationError):
        TOOLS_BY_NAME[TRACK].input_model.model_validate(sent)
    with pytest.raises(ValidationError):  # and the model refuses NaN itself, had it arrived
        TOOLS_BY_NAME[TRACK].input_model.model_validate(track(customer_id="cus_1", quantity=NAN))
