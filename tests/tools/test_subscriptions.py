"""The subscriptions toolset end to end, on both surfaces: create, read, update and the status lifecycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_fixtures import MODES, PK, Harness, open_harness

pytestmark = pytest.mark.anyio

SURFACES = ("full", "core")


@pytest.fixture(params=[(m, s) for m in MODES for s in SURFACES], ids=lambda p: f"{p[0]}-{p[1]}")
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    mode, surface = request.param
    async with open_harness(tmp_path, mode, surface=surface) as harness:
        yield harness


async def new_subscription(h: Harness, customer: str, **extra: object) -> dict[str, object]:
    args = {"customer_id": customer, "name": "Pro", "interval": "MONTHLY", "price_usdc": 29.5, **extra}
    return await h.op_ok("drip_create_subscription", args)


async def test_a_subscription_moves_through_pause_resume_and_cancel(h: Harness) -> None:
    customer = await h.new_customer("sub-user")
    created = await new_subscription(h, customer, idempotency_key="sub-key-1")
    sub = {"subscription_id": created["id"]}
    assert (created["status"], created["price_usdc"], created["interval"]) == ("ACTIVE", "29.500000", "MONTHLY")
    assert created["idempotency_key"] == "sub-key-1"

    paused = await h.op_ok("drip_pause_subscription", sub)
    assert (paused["status"], paused["paused_at"] is not None) == ("PAUSED", True)
    again = await h.op_error("drip_pause_subscription", sub, "INVALID_SUBSCRIPTION_TRANSITION")
    assert again["status"] == 409
    resumed = await h.op_ok("drip_resume_subscription", sub)
    assert (resumed["status"], resumed["paused_at"]) == ("ACTIVE", None)

    at_period_end = await h.op_ok("drip_cancel_subscription", sub)
    assert (at_period_end["status"], at_period_end["cancel_at_period_end"]) == ("ACTIVE", True)
    now = await h.op_ok("drip_cancel_subscription", {**sub, "immediate": True})
    assert now["status"] == "CANCELLED"
    assert (await h.op_ok("drip_get_subscription", sub))["status"] == "CANCELLED"
    cancelled = await h.op_ok("drip_list_subscriptions", {"status": "CANCELLED"})
    assert [s["id"] for s in cancelled["data"]] == [created["id"]]
    assert (await h.op_ok("drip_list_subscriptions", {"status": "ACTIVE"}))["count"] == 0


async def test_pause_until_a_resume_date_sets_resumes_at(h: Harness) -> None:
    customer = await h.new_customer("pause-user")
    created = await new_subscription(h, customer)
    paused = await h.op_ok(
        "drip_pause_subscription", {"subscription_id": created["id"], "resume_date": "2099-01-01T00:00:00Z"}
    )
    assert paused["status"] == "PAUSED"
    assert str(paused["resumes_at"]).startswith("2099-01-01T00:00:00")


async def test_a_trial_subscription_starts_trialing(h: Harness) -> None:
    customer = await h.new_customer("trial-user")
    created = await new_subscription(
        h, customer, interval="WEEKLY", trial_days=14, included_usage=1000, overage_unit_type="api_calls"
    )
    assert (created["status"], created["trial_start"] is not None) == ("TRIALING", True)
    assert (created["included_usage"], created["overage_unit_type"]) == (1000, "api_calls")


async def test_update_subscription_changes_price_and_redacts_metadata(h: Harness) -> None:
    customer = await h.new_customer("update-user")
    created = await new_subscription(h, customer)
    updated = await h.op_ok(
        "drip_update_subscription",
        {
            "subscription_id": created["id"],
            "name": "Pro yearly",
            "price_usdc": 300,
            "metadata": {"model": "gpt-x", "email": "jane@example.com"},
        },
    )
    assert (updated["name"], updated["price_usdc"]) == ("Pro yearly", "300.000000")
    assert updated["metadata"]["model"] == "gpt-x"
    [sent] = h.sent_to("PATCH", f"/v1/subscriptions/{created['id']}")
    assert "jane@example.com" not in json.dumps(sent.body)
    assert sent.body["priceUsdc"] == 300


async def test_list_subscriptions_filters_by_customer_and_limit(h: Harness) -> None:
    mine, theirs = await h.new_customer("a"), await h.new_customer("b")
    first = await new_subscription(h, mine)
    second = await new_subscription(h, mine, name="Add-on")
    await new_subscription(h, theirs)
    listed = await h.op_ok("drip_list_subscriptions", {"customer_id": mine})
    assert [s["id"] for s in listed["data"]] == [second["id"], first["id"]]  # newest first
    assert (await h.op_ok("drip_list_subscriptions", {"limit": 1}))["count"] == 1


async def test_an_unknown_interval_or_status_is_refused_before_sending(h: Harness) -> None:
    bad = {"customer_id": "c", "name": "x", "interval": "YEARLY", "price_usdc": 1}
    await h.op_error("drip_create_subscription", bad, "VALIDATION_ERROR")
    await h.op_error("drip_list_subscriptions", {"status": "active"}, "VALIDATION_ERROR")
    await h.op_error("drip_create_subscription", {**bad, "interval": "MONTHLY", "price_usdc": -1}, "VALIDATION_ERROR")
    assert h.sent == []


async def test_an_unknown_subscription_is_not_found(h: Harness) -> None:
    await h.op_error("drip_resume_subscription", {"subscription_id": "sub_missing"}, "NOT_FOUND")


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_public_key_manages_subscriptions(tmp_path: Path, surface: str) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        customer = await h.new_customer("public-sub-user")
        created = await new_subscription(h, customer)
        cancelled = await h.op_ok("drip_cancel_subscription", {"subscription_id": created["id"], "immediate": True})
    assert cancelled["status"] == "CANCELLED"
