"""The entitlements toolset end to end, on both surfaces: checks that run out, plans, rules and assignment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, PK, Harness, open_harness

from drip_mcp.keys import KeyType
from drip_mcp.tools import OPERATIONS

pytestmark = pytest.mark.anyio

SURFACES = ("full", "core")
SECRET_OPS = [t.name for t in OPERATIONS if t.toolset == "entitlements" and t.scope is KeyType.SECRET]


@pytest.fixture(params=[(m, s) for m in MODES for s in SURFACES], ids=lambda p: f"{p[0]}-{p[1]}")
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    mode, surface = request.param
    async with open_harness(tmp_path, mode, surface=surface) as harness:
        yield harness


async def plan_with_rule(h: Harness, limit: int = 3, **rule: Any) -> tuple[str, dict[str, Any]]:
    plan = await h.op_ok("drip_create_entitlement_plan", {"name": "Starter", "slug": "starter"})
    added = await h.op_ok(
        "drip_add_entitlement_rule",
        {
            "plan_id": plan["id"],
            "feature_key": "api_calls",
            "limit_type": "COUNT",
            "period": "DAILY",
            "limit_value": limit,
            **rule,
        },
    )
    return plan["id"], added


async def test_check_entitlement_counts_allowed_checks_until_the_limit_runs_out(h: Harness) -> None:
    customer = await h.new_customer("gated-user")
    plan_id, _ = await plan_with_rule(h, limit=3)
    await h.op_ok("drip_assign_customer_entitlement", {"customer_id": customer, "plan_id": plan_id})
    check = {"customer_id": customer, "feature_key": "api_calls"}

    first = await h.op_ok("drip_check_entitlement", {**check, "quantity": 2})
    too_much = await h.op_ok("drip_check_entitlement", {**check, "quantity": 2})
    last = await h.op_ok("drip_check_entitlement", check)
    empty = await h.op_ok("drip_check_entitlement", check)

    assert (first["allowed"], first["remaining"], first["limit"]) == (True, 1, 3)
    assert (too_much["allowed"], too_much["remaining"]) == (False, 1)  # a denied check consumes nothing
    assert (last["allowed"], last["remaining"]) == (True, 0)
    assert (empty["allowed"], empty["remaining"]) == (False, 0)
    assert first["period"] == "DAILY"
    assert first["idempotency_key"]
    usage = (await h.op_ok("drip_get_customer_entitlement", {"customer_id": customer}))["usage"]
    assert (usage["api_calls"]["used"], usage["api_calls"]["remaining"]) == (3, 0)
    assert [r.body["quantity"] for r in h.sent_to("POST", "/v1/entitlements/check")] == [2, 2, 1, 1]


@pytest.mark.parametrize("surface", SURFACES)
async def test_check_entitlement_takes_a_public_key(tmp_path: Path, surface: str) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        customer = await h.new_customer("public-user")
        out = await h.op_ok("drip_check_entitlement", {"customer_id": customer, "feature_key": "search"})
    assert (out["allowed"], out["unlimited"], out["remaining"]) == (True, True, -1)  # no plan: not gated


async def test_check_entitlement_for_an_unknown_customer_is_not_found(h: Harness) -> None:
    await h.op_error("drip_check_entitlement", {"customer_id": "cus_nobody", "feature_key": "x"}, "NOT_FOUND")


async def test_plans_and_rules_are_created_read_updated_and_deleted(h: Harness) -> None:
    plan_id, rule = await plan_with_rule(h, limit=10)
    assert (rule["feature_key"], rule["limit_value"], rule["unlimited"]) == ("api_calls", 10, False)

    got = await h.op_ok("drip_get_entitlement_plan", {"plan_id": plan_id})
    assert (got["slug"], got["is_active"], [r["id"] for r in got["rules"]]) == ("starter", True, [rule["id"]])
    updated = await h.op_ok(
        "drip_update_entitlement_plan", {"plan_id": plan_id, "name": "Starter 2", "is_default": True}
    )
    assert (updated["name"], updated["is_default"]) == ("Starter 2", True)
    changed = await h.op_ok(
        "drip_update_entitlement_rule", {"rule_id": rule["id"], "period": "MONTHLY", "limit_value": 50}
    )
    assert (changed["period"], changed["limit_value"], changed["limit_type"]) == ("MONTHLY", 50, "COUNT")
    rules = await h.op_ok("drip_list_entitlement_rules", {"plan_id": plan_id})
    assert [r["limit_value"] for r in rules["rules"]] == [50]

    assert (await h.op_ok("drip_delete_entitlement_rule", {"rule_id": rule["id"]}))["result"] == "ok"
    assert (await h.op_ok("drip_list_entitlement_rules", {"plan_id": plan_id}))["rules"] == []
    assert (await h.op_ok("drip_delete_entitlement_plan", {"plan_id": plan_id}))["result"] == "ok"
    assert (await h.op_ok("drip_get_entitlement_plan", {"plan_id": plan_id}))["is_active"] is False


async def test_list_entitlement_plans_active_only_leaves_out_deleted_plans(h: Harness) -> None:
    kept = await h.op_ok("drip_create_entitlement_plan", {"name": "Kept", "slug": "kept"})
    gone = await h.op_ok("drip_create_entitlement_plan", {"name": "Gone", "slug": "gone", "description": "old"})
    await h.op_ok("drip_delete_entitlement_plan", {"plan_id": gone["id"]})

    every = await h.op_ok("drip_list_entitlement_plans", {})
    active = await h.op_ok("drip_list_entitlement_plans", {"active_only": True})

    assert {p["id"] for p in every["plans"]} == {kept["id"], gone["id"]}
    assert [p["id"] for p in active["plans"]] == [kept["id"]]
    assert (every["count"], active["count"]) == (2, 1)
    assert len(h.sent_to("GET", "/v1/entitlement-plans")) == 2  # the filter is applied here, not sent


async def test_assignment_overrides_are_sent_as_drips_map_and_change_the_limit(h: Harness) -> None:
    customer = await h.new_customer("override-user")
    plan_id, _ = await plan_with_rule(h, limit=1)
    assigned = await h.op_ok(
        "drip_assign_customer_entitlement",
        {"customer_id": customer, "plan_id": plan_id, "overrides": [{"feature_key": "api_calls", "limit_value": 5}]},
    )
    [sent] = h.sent_to("PUT", f"/v1/customers/{customer}/entitlement")
    assert sent.body["overrides"] == {"api_calls": {"limitValue": 5}}
    assert assigned["plan_id"] == plan_id
    assert assigned["overrides"] == {"api_calls": {"limitValue": 5}}

    out = await h.op_ok("drip_check_entitlement", {"customer_id": customer, "feature_key": "api_calls", "quantity": 4})
    assert (out["allowed"], out["remaining"], out["limit"]) == (True, 1, 5)
    got = await h.op_ok("drip_get_customer_entitlement", {"customer_id": customer})
    assert (got["plan_slug"], got["usage"]["api_calls"]["used"]) == ("starter", 4)


async def test_an_unknown_limit_type_is_refused_before_sending(h: Harness) -> None:
    args = {"plan_id": "p", "feature_key": "f", "limit_type": "count", "period": "DAILY", "limit_value": 1}
    error = await h.op_error("drip_add_entitlement_rule", args, "VALIDATION_ERROR")
    assert "limit_type" in error["message"]
    assert h.sent == []


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("name", SECRET_OPS)
async def test_plan_rule_and_assignment_operations_refuse_a_public_key_without_a_request(
    tmp_path: Path, surface: str, name: str
) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        error = await h.op_error(name, {"plan_id": "p"}, "PUBLIC_KEY_NOT_ALLOWED")
        assert error["status"] == 403
        assert h.sent == []
