"""The webhooks toolset end to end (secret key): endpoints and their signing secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server_fixtures import PK, SURFACES, Harness, file_exists, open_harness, read_secret_file

pytestmark = pytest.mark.anyio

WEBHOOK_URL = "http://127.0.0.1:9/drip"  # loopback: the sandbox refuses other hosts by default


async def test_create_webhook_registers_the_endpoint(h: Harness) -> None:
    out = await h.ok(
        "drip_create_webhook",
        {"url": WEBHOOK_URL, "events": ["charge.succeeded"], "description": "billing", "idempotency_key": "wh-1"},
    )
    assert out["webhook"]["url"] == WEBHOOK_URL
    assert out["webhook"]["events"] == ["charge.succeeded"]
    assert out["idempotency_key"] == "wh-1"
    assert h.store.webhook(out["webhook"]["id"])["url"] == WEBHOOK_URL


async def test_create_webhook_plain_http_to_a_remote_host_is_rejected_by_drip(h: Harness) -> None:
    error = await h.error(
        "drip_create_webhook", {"url": "http://example.com/hook", "events": ["*"]}, "VALIDATION_ERROR"
    )
    assert error["status"] == 422


async def test_list_and_get_webhook_never_show_the_secret(h: Harness) -> None:
    created = await h.new_webhook()
    listed = await h.ok("drip_list_webhooks")
    assert [w["id"] for w in listed["webhooks"]] == [created["webhook"]["id"]]
    got = await h.ok("drip_get_webhook", {"webhook_id": created["webhook"]["id"]})
    assert got["url"] == WEBHOOK_URL
    secret = h.store.webhook(created["webhook"]["id"])["secret"]
    assert secret not in json.dumps(listed)
    assert secret not in json.dumps(got)


async def test_get_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_get_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_delete_webhook_removes_it_and_its_secret_file(h: Harness) -> None:
    created = await h.new_webhook()
    secret_file = created["secret_file"]
    assert file_exists(secret_file)
    out = await h.ok("drip_delete_webhook", {"webhook_id": created["webhook"]["id"]})
    assert (out["deleted"], out["webhook_id"], out["is_duplicate"]) == (True, created["webhook"]["id"], False)
    retried = await h.ok(
        "drip_delete_webhook", {"webhook_id": created["webhook"]["id"], "idempotency_key": out["idempotency_key"]}
    )
    assert (retried["deleted"], retried["is_duplicate"]) == (True, True)
    assert not file_exists(secret_file)
    assert (await h.ok("drip_list_webhooks"))["count"] == 0


async def test_delete_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_delete_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_test_webhook_delivers_a_signed_test_event(h: Harness) -> None:
    created = await h.new_webhook()
    out = await h.ok("drip_test_webhook", {"webhook_id": created["webhook"]["id"], "idempotency_key": "wht-1"})
    assert out["delivery_status"] == "DELIVERED"
    assert out["response_code"] == 200
    assert out["idempotency_key"] == "wht-1"
    tests = [r for r in h.deliveries if json.loads(r.content)["type"] == "webhook.test"]
    assert len(tests) == 1
    assert tests[0].headers["X-Drip-Signature"].startswith("t=")


async def test_test_webhook_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_test_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")


async def test_rotate_webhook_secret_replaces_the_secret(h: Harness) -> None:
    created = await h.new_webhook()
    webhook_id = created["webhook"]["id"]
    before = h.store.webhook(webhook_id)["secret"]
    out = await h.ok("drip_rotate_webhook_secret", {"webhook_id": webhook_id, "idempotency_key": "rot-1"})
    after = h.store.webhook(webhook_id)["secret"]
    assert after != before
    assert out["webhook_id"] == webhook_id
    assert out["idempotency_key"] == "rot-1"
    assert read_secret_file(out["secret_file"]) == after


async def test_rotate_webhook_secret_unknown_id_is_not_found(h: Harness) -> None:
    await h.error("drip_rotate_webhook_secret", {"webhook_id": "wh_missing"}, "NOT_FOUND")


# --- update and deliveries (both surfaces: `hs`) --------------------------------------------------------------


async def _tested(h: Harness) -> tuple[str, str]:
    """A webhook with one delivered test event: (webhook id, delivery id)."""
    webhook_id = (await h.new_webhook())["webhook"]["id"]
    await h.op_ok("drip_test_webhook", {"webhook_id": webhook_id})
    [delivery] = h.store.webhook_deliveries(webhook_id, limit=10)
    return webhook_id, delivery["id"]


async def test_update_webhook_pauses_it_and_changes_its_events_and_never_shows_the_secret(hs: Harness) -> None:
    created = await hs.new_webhook()
    webhook_id = created["webhook"]["id"]
    args = {"webhook_id": webhook_id, "events": ["charge.succeeded"], "description": "billing", "is_active": False}
    out = await hs.op_ok("drip_update_webhook", {**args, "idempotency_key": "whu-1"})
    assert (out["id"], out["events"], out["description"], out["is_active"]) == (
        webhook_id,
        ["charge.succeeded"],
        "billing",
        False,
    )
    assert out["idempotency_key"] == "whu-1"
    assert hs.store.webhook(webhook_id)["secret"] not in json.dumps(out)
    got = await hs.op_ok("drip_get_webhook", {"webhook_id": webhook_id})
    assert (got["is_active"], got["events"]) == (False, ["charge.succeeded"])


async def test_update_webhook_to_a_remote_host_is_refused_by_the_sandbox(hs: Harness) -> None:
    webhook_id = (await hs.new_webhook())["webhook"]["id"]
    args = {"webhook_id": webhook_id, "url": "https://hooks.example.com/x"}
    await hs.op_error("drip_update_webhook", args, "WEBHOOK_URL_NOT_ALLOWED")


async def test_list_and_get_webhook_deliveries(hs: Harness) -> None:
    webhook_id, delivery_id = await _tested(hs)
    listed = await hs.op_ok("drip_list_webhook_deliveries", {"webhook_id": webhook_id})
    assert [(d["id"], d["event_type"], d["status"]) for d in listed["data"]] == [
        (delivery_id, "webhook.test", "DELIVERED")
    ]
    one = await hs.op_ok("drip_get_webhook_delivery", {"webhook_id": webhook_id, "delivery_id": delivery_id})
    assert (one["id"], one["attempts"], one["payload"]["type"]) == (delivery_id, 1, "webhook.test")


async def test_retry_webhook_delivery_sends_it_once_more(hs: Harness) -> None:
    webhook_id, delivery_id = await _tested(hs)
    sent_before = len(hs.deliveries)
    out = await hs.op_ok("drip_retry_webhook_delivery", {"webhook_id": webhook_id, "delivery_id": delivery_id})
    assert (out["id"], out["status"], out["attempts"]) == (delivery_id, "DELIVERED", 2)
    assert len(hs.deliveries) == sent_before + 1


async def test_webhook_delivery_of_another_webhook_is_not_found(hs: Harness) -> None:
    _, delivery_id = await _tested(hs)
    other = (await hs.new_webhook())["webhook"]["id"]
    await hs.op_error("drip_get_webhook_delivery", {"webhook_id": other, "delivery_id": delivery_id}, "NOT_FOUND")


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("drip_update_webhook", {"webhook_id": "wh_x", "is_active": False}),
        ("drip_list_webhook_deliveries", {"webhook_id": "wh_x"}),
        ("drip_get_webhook_delivery", {"webhook_id": "wh_x", "delivery_id": "d_x"}),
        ("drip_retry_webhook_delivery", {"webhook_id": "wh_x", "delivery_id": "d_x"}),
    ],
)
async def test_webhook_admin_with_a_public_key_is_refused_with_nothing_sent(
    tmp_path: Path, surface: str, name: str, args: dict[str, object]
) -> None:
    async with open_harness(tmp_path, api_key=PK, surface=surface) as h:
        await h.op_error(name, args, "PUBLIC_KEY_NOT_ALLOWED")
        assert h.sent == []


async def test_create_webhook_filters_reach_drip_come_back_and_select_deliveries(h: Harness) -> None:
    wanted, other = await h.new_customer("filter-a"), await h.new_customer("filter-b")
    filters = {"customer_ids": [wanted], "usage_types": ["api_calls"], "severities": ["high", "critical"]}
    out = await h.ok("drip_create_webhook", {"url": WEBHOOK_URL, "events": ["charge.succeeded"], "filters": filters})
    [sent] = h.sent_to("POST", "/v1/webhooks")
    assert sent.body["filters"] == {
        "usageTypes": ["api_calls"],
        "customerIds": [wanted],
        "severities": ["high", "critical"],
    }
    assert out["webhook"]["filters"] == filters
    webhook_id = out["webhook"]["id"]
    assert (await h.ok("drip_get_webhook", {"webhook_id": webhook_id}))["filters"] == filters
    for customer_id in (wanted, other):
        await h.ok("drip_charge", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1})
    deliveries = h.store.webhook_deliveries(webhook_id, limit=10)
    assert [json.loads(d["payload"])["data"]["customerId"] for d in deliveries] == [wanted]


async def test_update_webhook_sets_filters(hs: Harness) -> None:
    webhook_id = (await hs.new_webhook())["webhook"]["id"]
    out = await hs.op_ok("drip_update_webhook", {"webhook_id": webhook_id, "filters": {"usage_types": ["tokens"]}})
    assert hs.sent_to("PATCH", f"/v1/webhooks/{webhook_id}")[-1].body["filters"] == {"usageTypes": ["tokens"]}
    assert out["filters"] == {"usage_types": ["tokens"]}
    got = await hs.op_ok("drip_get_webhook", {"webhook_id": webhook_id})
    assert got["filters"] == {"usage_types": ["tokens"]}


async def test_webhook_filters_refuse_an_unknown_severity_before_sending(h: Harness) -> None:
    args = {"url": WEBHOOK_URL, "events": ["*"], "filters": {"severities": ["urgent"]}}
    await h.error("drip_create_webhook", args, "VALIDATION_ERROR")
    assert h.sent_to("POST", "/v1/webhooks") == []
