"""URL-mode elicitation for payment pages: the user opens the checkout page from the client itself.

Used by two tools, through the `PaymentPages` hook on their `ToolContext`:

* ``drip_checkout`` creates the page, then asks the client to open it; the result says what the user
  did (``user_action``).
* ``drip_charge``, on PAYMENT_REQUIRED (402): creates a top-up page for the customer, asks the client
  to open it, and when the user accepts, sends the charge once more with the same idempotency key.

Only when the client declared ``elicitation.url``. Otherwise (and when the user declines) the tools
answer as they always have: the checkout ``url``, or the PAYMENT_REQUIRED error.

How each protocol era carries it:

* 2025-11-25 (``initialize``): a server-to-client ``elicitation/create`` request in URL mode
  (`Context.elicit_url`), answered while the tool call waits. A transport without a back-channel
  (stateless HTTP) cannot send it: plain URL.
* 2026-07-28 (``server/discover``): no server-to-client requests. The call ends with an
  `InputRequiredResult` holding the ``elicitation/create`` URL request and a ``request_state`` (which
  the SDK seals: the client cannot forge or alter it). The client shows the page and calls the tool
  again with the answer; the tool re-runs, finds the answer and its saved state, and finishes:
  ``drip_checkout`` returns the page it created (no second checkout), ``drip_charge`` skips the
  confirmation it already passed and retries with the saved idempotency key, at most once.

An accepted URL elicitation only says the user agreed to open the page; paying happens out of band.
The retried charge is the proof: it succeeds, or it fails again with PAYMENT_REQUIRED.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestURLParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least

from drip_mcp.errors import DripError, PaymentRequiredError
from drip_mcp.tools.context import TOP_UP_PAGE, NeedsClientInput, ToolContext, UserAction

__all__ = ["TOP_UP_RETURN_URL", "URL_ELICITATION", "UrlElicitation", "supports_url_elicitation", "top_up_cents"]

R = TypeVar("R")

INPUT_REQUIRED_VERSION: Final = "2026-07-28"
STATE_TAG: Final = "drip-url-elicitation/1"
TOP_UP_RETURN_URL: Final = "https://drippay.dev/checkout/complete"
"""Where a top-up page sends the payer afterwards (the checkout API requires one)."""
MIN_TOP_UP_CENTS: Final = 500
MAX_TOP_UP_CENTS: Final = 1_000_000

_ACTIONS: Final[dict[str, UserAction]] = {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}


def supports_url_elicitation(mcp: Context[Any, Any] | None) -> bool:
    """Whether the client declared URL-mode elicitation (a bare ``elicitation: {}`` means form only)."""
    caps = mcp.client_capabilities if mcp is not None else None
    return caps is not None and caps.elicitation is not None and caps.elicitation.url is not None


def _input_required(mcp: Context[Any, Any]) -> bool:
    version = mcp.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def top_up_cents(error: PaymentRequiredError) -> int:
    """Enough to cover the refused charge: its amount in cents, rounded up, within the checkout's limits."""
    amount = (error.payment_request or {}).get("amount")
    try:
        cents = math.ceil(Decimal(str(amount)) * 100)
    except (InvalidOperation, ValueError, TypeError):
        cents = MIN_TOP_UP_CENTS
    return min(max(cents, MIN_TOP_UP_CENTS), MAX_TOP_UP_CENTS)


def _decode(request_state: str | None) -> dict[str, Any] | None:
    if not request_state:
        return None
    try:
        state = json.loads(request_state)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("tag") == STATE_TAG else None


class UrlElicitation:
    """`PaymentPages` through URL-mode elicitation, on both protocol eras (see the module docstring)."""

    def _answer(self, mcp: Context[Any, Any], purpose: str) -> tuple[UserAction, Mapping[str, Any]] | None:
        """On a 2026-07-28 retry: the user's answer for `purpose` and the state saved when it was asked."""
        if not _input_required(mcp):
            return None
        answer = (mcp.input_responses or {}).get(purpose)
        state = _decode(mcp.request_state)
        if not isinstance(answer, ElicitResult) or state is None or state.get("purpose") != purpose:
            return None
        data = state.get("data")
        return _ACTIONS[answer.action], data if isinstance(data, dict) else {}

    def resumed(self, ctx: ToolContext, purpose: str) -> Mapping[str, Any] | None:
        if ctx.mcp is None or not supports_url_elicitation(ctx.mcp):
            return None
        answered = self._answer(ctx.mcp, purpose)
        return None if answered is None else answered[1]

    async def present(
        self, ctx: ToolContext, *, purpose: str, message: str, url: str, page_id: str, state: Mapping[str, Any]
    ) -> UserAction | None:
        mcp = ctx.mcp
        if mcp is None or not supports_url_elicitation(mcp):
            return None
        if _input_required(mcp):
            answered = self._answer(mcp, purpose)
            if answered is not None:
                return answered[0]
            request = ElicitRequest(params=ElicitRequestURLParams(message=message, url=url))
            saved = json.dumps({"tag": STATE_TAG, "purpose": purpose, "data": dict(state)}, separators=(",", ":"))
            raise NeedsClientInput(InputRequiredResult(input_requests={purpose: request}, request_state=saved))
        if not mcp.request_context.session.can_send_request:
            return None  # 2025-11-25 without a back-channel (stateless HTTP): the plain URL it is
        result = await mcp.elicit_url(message, url, page_id)
        return _ACTIONS[result.action]

    async def charge(self, ctx: ToolContext, send: Callable[[], Awaitable[R]], *, customer_id: str) -> R:
        try:
            return await send()
        except PaymentRequiredError as refused:
            if not supports_url_elicitation(ctx.mcp) or self.resumed(ctx, TOP_UP_PAGE) is not None:
                raise  # no page to show, or this is already the retry after one
            key = refused.idempotency_key
            try:
                page = await ctx.client.checkout(
                    amount_cents=top_up_cents(refused),
                    return_url=TOP_UP_RETURN_URL,
                    customer_id=customer_id,
                    idempotency_key=None if key is None else "topup_" + hashlib.sha256(key.encode()).hexdigest()[:32],
                )
            except DripError:
                raise refused from None
            action = await self.present(
                ctx,
                purpose=TOP_UP_PAGE,
                message=f"Customer {customer_id}'s Drip balance is too low for this charge. Open the page to top "
                f"it up (${page.data.amount_usd}); the charge is retried once when you are done.",
                url=page.data.url,
                page_id=page.data.id,
                state={"idempotency_key": key, "checkout_id": page.data.id},
            )
            if action != "accepted":
                raise
            return await send()


URL_ELICITATION: Final = UrlElicitation()
