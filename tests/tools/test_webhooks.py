"""The webhooks toolset end to end (secret key): endpoints and their signing secrets."""

from __future__ import annotations

import json

import pytest
from server_fixtures import Harness, file_exists, read_secret_file

pytestmark = pytest.mark.anyio

WEBHOOK_URL = "http://127.0.0.1:9/drip"  # loopback: the sandbox refuses other webhook hosts by default


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
