"""The customers toolset end to end: create, get and list against the sandbox."""

from __future__ import annotations

import pytest
from server_fixtures import Harness, result_payload

pytestmark = pytest.mark.anyio


async def test_create_customer_returns_the_customer_and_echoes_the_idempotency_key(h: Harness) -> None:
    out = await h.ok(
        "drip_create_customer",
        {"external_customer_id": "user-42", "metadata": {"model": "gpt-x"}, "idempotency_key": "cus-key-42"},
    )
    assert out["idempotency_key"] == "cus-key-42"
    assert out["is_duplicate"] is False
    assert out["redacted_paths"] == []
    assert out["customer"]["external_customer_id"] == "user-42"
    assert out["customer"]["metadata"] == {"model": "gpt-x"}
    stored = h.store.customer(out["customer"]["id"])
    assert stored["external_customer_id"] == "user-42"
    [sent] = h.sent_to("POST", "/v1/customers")
    assert sent.body["idempotencyKey"] == "cus-key-42"


async def test_create_customer_without_an_identifier_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_create_customer", {"metadata": {"model": "x"}}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "external_customer_id"
    assert h.sent == []


async def test_create_customer_twice_is_a_conflict_carrying_the_existing_id(h: Harness) -> None:
    first = await h.new_customer("user-dup")
    result = await h.call("drip_create_customer", {"external_customer_id": "user-dup"})
    assert result.is_error
    error = result_payload(result)["error"]
    assert error["status"] == 409
    assert error["existing_id"] == first
    assert error["retryable"] is False
    assert "Error executing tool" not in result.content[0].text


async def test_get_customer_returns_the_created_customer(h: Harness) -> None:
    customer_id = await h.new_customer("user-get")
    out = await h.ok("drip_get_customer", {"customer_id": customer_id})
    assert out["id"] == customer_id
    assert out["external_customer_id"] == "user-get"


async def test_get_customer_unknown_id_is_not_found(h: Harness) -> None:
    error = await h.error("drip_get_customer", {"customer_id": "cus_does_not_exist"}, "NOT_FOUND")
    assert error["status"] == 404
    assert error["retryable"] is False


async def test_get_customer_id_with_a_slash_is_refused_before_sending(h: Harness) -> None:
    await h.error("drip_get_customer", {"customer_id": "../webhooks"}, "VALIDATION_ERROR")
    assert h.sent == []


async def test_list_customers_lists_newest_first(h: Harness) -> None:
    older = await h.new_customer("user-a")
    newer = await h.new_customer("user-b")
    out = await h.ok("drip_list_customers", {"limit": 10})
    assert [c["id"] for c in out["customers"]] == [newer, older]
    assert out["count"] == 2


async def test_list_customers_unknown_status_is_refused_before_sending(h: Harness) -> None:
    error = await h.error("drip_list_customers", {"status": "DELETED"}, "VALIDATION_ERROR")
    assert error["details"][0]["path"] == "status"
    assert h.sent == []
