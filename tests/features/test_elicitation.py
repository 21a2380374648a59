"""URL-mode elicitation for checkout and PAYMENT_REQUIRED, both protocol eras, through the official client.

The client's elicitation callback plays the user: it pays the sandbox checkout page (``POST
/checkout/{id}/pay``) and then answers, or declines without paying.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp_types import ElicitRequestURLParams, ElicitResult
from server_fixtures import Harness, assert_error, assert_ok, open_harness

pytestmark = pytest.mark.anyio

RETURN_URL = "https://example.com/paid"


class User:
    """An elicitation callback: records each URL request; pays the page first when `pays`."""

    def __init__(self, action: str = "accept", *, pays: bool = True) -> None:
        self.action = action
        self.pays = pays
        self.asked: list[ElicitRequestURLParams] = []
        self.transport: httpx2.AsyncBaseTransport | None = None

    async def __call__(self, context: Any, params: Any) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams)
        self.asked.append(params)
        if self.pays:
            assert self.transport is not None
            async with httpx2.AsyncClient(transport=self.transport) as http:
                paid = await http.post(params.url + "/pay")
            assert paid.status_code == 303
        return ElicitResult(action=self.action)  # type: ignore[arg-type]


async def _harness(tmp_path: Path, mode: str, user: User | None, **kw: Any) -> Any:
    options = {"elicitation_callback": user} if user is not None else None
    return open_harness(tmp_path, mode, client_options=options, **kw)


async def test_checkout_opens_the_page_and_the_user_pays(mode: str, tmp_path: Path) -> None:
    user = User()
    async with await _harness(tmp_path, mode, user) as h:
        user.transport = h.sandbox.transport()
        customer_id = await h.new_customer()
        out = await h.ok("drip_checkout", {"customer_id": customer_id, "amount_cents": 1500, "return_url": RETURN_URL})
        assert out["user_action"] == "accepted"
        [asked] = user.asked
        assert asked.url == out["url"]
        assert len(h.sent_to("POST", "/v1/checkout")) == 1  # the 2026 retry round made no second page
        assert h.store.balance(customer_id) == Decimal("115")


async def test_checkout_declined_is_reported_and_nothing_is_paid(mode: str, tmp_path: Path) -> None:
    user = User("decline", pays=False)
    async with await _harness(tmp_path, mode, user) as h:
        customer_id = await h.new_customer()
        out = await h.ok("drip_checkout", {"customer_id": customer_id, "amount_cents": 1500, "return_url": RETURN_URL})
        assert out["user_action"] == "declined"
        assert h.store.balance(customer_id) == Decimal("100")


async def test_checkout_without_url_elicitation_returns_the_plain_url(h: Harness) -> None:
    customer_id = await h.new_customer()
    out = await h.ok("drip_checkout", {"customer_id": customer_id, "amount_cents": 1500, "return_url": RETURN_URL})
    assert out["user_action"] is None
    assert out["url"]


CHARGE = {"meter": "api_calls", "quantity": 200_000, "idempotency_key": "big-charge"}


async def test_payment_required_charge_completes_after_the_user_tops_up(mode: str, tmp_path: Path) -> None:
    user = User()
    async with await _harness(tmp_path, mode, user) as h:
        user.transport = h.sandbox.transport()
        customer_id = await h.new_customer()
        out = await h.ok("drip_charge", {"customer_id": customer_id, **CHARGE})
        assert out["status"] == "charged"
        assert out["idempotency_key"] == "big-charge"
        assert len(user.asked) == 1
        keys = [r.body["idempotencyKey"] for r in h.sent_to("POST", "/v1/usage")]
        assert keys == ["big-charge", "big-charge"]  # refused once, retried once with the same key
        assert h.store.count_charges(customer_id) == 1
        assert h.store.balance(customer_id) == Decimal("100") + Decimal("200") - Decimal("200")


async def test_payment_required_without_paying_is_retried_once_then_returned(mode: str, tmp_path: Path) -> None:
    user = User("accept", pays=False)
    async with await _harness(tmp_path, mode, user) as h:
        customer_id = await h.new_customer()
        result = await h.call("drip_charge", {"customer_id": customer_id, **CHARGE})
        error = assert_error(result, "PAYMENT_REQUIRED")
        assert error["idempotency_key"] == "big-charge"
        assert len(user.asked) == 1
        assert len(h.sent_to("POST", "/v1/usage")) == 2
        assert h.store.count_charges(customer_id) == 0


async def test_payment_required_declined_is_not_retried(mode: str, tmp_path: Path) -> None:
    user = User("decline", pays=False)
    async with await _harness(tmp_path, mode, user) as h:
        customer_id = await h.new_customer()
        result = await h.call("drip_charge", {"customer_id": customer_id, **CHARGE})
        assert_error(result, "PAYMENT_REQUIRED")
        # 2025-11-25 stops at the refusal; 2026-07-28 re-runs the call for the answer and sends it once more.
        assert len(h.sent_to("POST", "/v1/usage")) == (2 if mode == "auto" else 1)
        assert h.store.count_charges(customer_id) == 0


async def test_payment_required_without_url_elicitation_returns_the_error(h: Harness) -> None:
    customer_id = await h.new_customer()
    result = await h.call("drip_charge", {"customer_id": customer_id, **CHARGE})
    error = assert_error(result, "PAYMENT_REQUIRED")
    assert error["checkout_url"]
    assert h.sent_to("POST", "/v1/checkout") == []


async def test_top_up_after_form_confirmation_asks_each_question_once(mode: str, tmp_path: Path) -> None:
    asked: list[str] = []
    payer = User()

    async def user(context: Any, params: Any) -> ElicitResult:
        asked.append(params.mode or "form")
        if isinstance(params, ElicitRequestURLParams):
            return await payer(context, params)
        return ElicitResult(action="accept", content={"confirm": True})

    async with open_harness(tmp_path, mode, client_options={"elicitation_callback": user}, confirm_charges=True) as h:
        payer.transport = h.sandbox.transport()
        customer_id = await h.new_customer()
        out = assert_ok("drip_charge", await h.call("drip_charge", {"customer_id": customer_id, **CHARGE}))
        assert out["status"] == "charged"
        assert asked == ["form", "url"]
        assert h.store.count_charges(customer_id) == 1
