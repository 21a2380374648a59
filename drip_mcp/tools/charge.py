"""The charge path: every safety rule for moving money, in the order it applies.

1. metadata policy (``--max-quantity`` is applied earlier, where the arguments are validated);
2. ``dry_run``: price x quantity, the balance now and after; nothing is charged;
3. the price, when any cap or confirmation needs it (unknown price with a cap
   set: refuse, fail closed);
4. the per-charge cap;
5. confirmation (``--confirm-charges``): ask the user through elicitation when
   the client supports it, else hand out a one-time confirm token;
6. the session budget: reserve before sending, commit on success, release when
   Drip refuses (kept when the outcome is unknown);
7. the charge itself (``POST /usage``, or ``POST /usage/async`` for `drip_charge_async`), with one
   idempotency key for all retries.

Every refusal is a structured error and sends nothing. Both charge tools run this one path
(`run_charge`, `route` names the client call that sends the charge): an async charge is priced,
capped, confirmed and budgeted like a synchronous one; its reservation is committed when Drip accepts it
(PENDING), as the money is then spoken for.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import AcceptedElicitation, Elicit, Resolve
from mcp.server.mcpserver.resolve import build_resolver_plans, resolve_arguments
from mcp_types import InputRequiredResult
from pydantic import BaseModel, Field

from drip_mcp.api.client import Reply
from drip_mcp.api.endpoints import ENDPOINTS
from drip_mcp.api.models import ChargeAsyncResult, ChargeResult, Money, format_money
from drip_mcp.api.wire import new_idempotency_key
from drip_mcp.errors import APIStatusError, ConfirmationError, DripError
from drip_mcp.keys import KeyType
from drip_mcp.safety.confirmation import Confirmed
from drip_mcp.safety.ledger import LedgerEntry
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    Metadata,
    Meter,
    MutationResult,
    Quantity,
    ToolInput,
    ToolSpec,
)
from drip_mcp.tools.context import TOP_UP_PAGE, NeedsClientInput, ToolContext

__all__ = [
    "TOOLS",
    "ChargeAsyncInput",
    "ChargeConfirmation",
    "ChargeInput",
    "ChargeOutput",
    "ChargeRoute",
    "run_charge",
]


class ChargeInput(ToolInput):
    customer_id: CustomerId
    meter: Meter
    quantity: Quantity = Field(description="Billable quantity in the meter's unit. Must be > 0.")
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None
    dry_run: bool = Field(
        default=False,
        description="Preview only: return the amount, the current balance and the balance after, charge nothing.",
    )
    confirm_token: Annotated[str | None, Field(max_length=512)] = Field(
        default=None,
        description="Only when a previous drip_charge returned status 'confirmation_required': pass its "
        "confirm_token with identical arguments to go ahead.",
    )


class ChargeAsyncInput(ChargeInput):
    confirm_token: Annotated[str | None, Field(max_length=512)] = Field(
        default=None,
        description="Only when a previous drip_charge_async returned status 'confirmation_required': pass its "
        "confirm_token with identical arguments to go ahead.",
    )


ChargeRoute = Literal["charge", "charge_async"]
"""Which client call sends the charge: ``POST /usage`` or ``POST /usage/async``."""


class ChargeOutput(MutationResult):
    status: Literal["charged", "preview", "confirmation_required"] = Field(
        description="'charged': money moved (async: accepted, charge_status PENDING until it settles). 'preview': "
        "dry run, nothing charged. 'confirmation_required': nothing charged; ask the user, then call again with "
        "confirm_token."
    )
    customer_id: str
    meter: str
    quantity: Decimal
    amount_usdc: Money | None = Field(default=None, description="What this charge costs (or cost).")
    charge_id: str | None = None
    charge_status: str | None = None
    usage_event_id: str | None = None
    balance_before_usdc: Money | None = None
    balance_after_usdc: Money | None = None
    confirm_token: str | None = None
    confirm_expires_at: str | None = None


class ChargeConfirmation(BaseModel):
    """What the user is asked before a charge."""

    confirm: bool = Field(description="Charge now?")


async def _preview(ctx: ToolContext, inp: ChargeInput, amount: Decimal | None) -> dict[str, Any]:
    """The amount with the customer's available balance now and after it (after: None if unpriced)."""
    available = (await ctx.client.get_balance(inp.customer_id)).available_usdc
    return {
        "amount_usdc": amount,
        "balance_before_usdc": available,
        "balance_after_usdc": None if amount is None else available - amount,
    }


async def _price(ctx: ToolContext, inp: ChargeInput) -> Decimal | None:
    unit = await ctx.services.prices.unit_price(ctx.client, inp.meter)
    return None if unit is None else unit * inp.quantity


async def _elicit(ctx: ToolContext, message: str) -> bool:
    """Ask the user; True when they accepted and confirmed. Works on both protocol eras."""

    async def confirm_charge() -> Elicit[ChargeConfirmation]:
        return Elicit(message, ChargeConfirmation)

    assert ctx.mcp is not None
    wanted = {"answer": (Resolve(confirm_charge), True)}
    outcome = await resolve_arguments(wanted, build_resolver_plans(wanted, set()), {}, ctx.mcp)
    if isinstance(outcome, InputRequiredResult):
        raise NeedsClientInput(outcome)
    answer = outcome["answer"]
    return isinstance(answer, AcceptedElicitation) and bool(answer.data.confirm)


def _supports_elicitation(ctx: ToolContext) -> bool:
    caps = ctx.mcp.client_capabilities if ctx.mcp is not None else None
    return caps is not None and caps.elicitation is not None


async def run_charge(ctx: ToolContext, inp: ChargeInput, route: ChargeRoute = "charge") -> ChargeOutput:
    """Preview, check, confirm and perform a charge, sent by the client call `route`."""
    guard, settings = ctx.services.guard, ctx.settings
    prefix = ENDPOINTS[route].key_prefix
    metadata = ctx.clean_metadata(inp.metadata)  # --max-quantity was applied when the arguments were validated
    base: dict[str, Any] = {"customer_id": inp.customer_id, "meter": inp.meter, "quantity": inp.quantity}

    if inp.dry_run:
        return ChargeOutput(
            status="preview",
            **base,
            **await _preview(ctx, inp, await _price(ctx, inp)),
            idempotency_key=inp.idempotency_key or new_idempotency_key(prefix),
            redacted_paths=ctx.redacted,
        )

    amount: Decimal | None = None
    if guard.active or settings.confirm_charges:
        amount = await _price(ctx, inp)
        if amount is None and guard.active:
            raise DripError(
                f"The price of meter {inp.meter!r} is unknown, and a spend cap is set: refusing to charge "
                "(fail closed); nothing was charged.",
                code="PRICE_UNKNOWN",
                status=422,
                hint="Use a meter with an active FLAT pricing plan (drip_list_meters).",
            )
    if amount is not None:
        guard.check_per_call(amount)

    key = inp.idempotency_key
    top_up = ctx.payments.resumed(ctx, TOP_UP_PAGE)  # the answer to a top-up page: confirmed already, same key
    confirmed: Confirmed | None = None
    if settings.confirm_charges and top_up is None:
        # Bound to the account too: with per-request keys, one tenant's token is useless to another;
        # and to the operation: a token for drip_charge cannot start an async charge.
        token_args = {**base, "metadata": metadata, "account": ctx.tenant, "route": route}
        shown = "an unknown amount" if amount is None else f"{format_money(amount)} USDC"
        if _supports_elicitation(ctx):
            question = f"Charge customer {inp.customer_id} {shown} for {inp.quantity} {inp.meter}? This moves money."
            if not await _elicit(ctx, question):
                raise ConfirmationError(
                    "The user declined the charge; nothing was charged.",
                    code="CONFIRMATION_DECLINED",
                    hint="Do not retry unless the user asks for it.",
                )
        elif inp.confirm_token is None:
            key = key or new_idempotency_key(prefix)
            issued = await ctx.services.confirm_tokens.issue(token_args, key)
            return ChargeOutput(
                status="confirmation_required",
                **base,
                **await _preview(ctx, inp, amount),
                confirm_token=issued.token,
                confirm_expires_at=datetime.fromtimestamp(issued.expires_at, timezone.utc).isoformat(),
                idempotency_key=key,
                redacted_paths=ctx.redacted,
            )
        else:
            # Checked in full now, consumed only right before the charge it authorises is sent.
            confirmed = await ctx.services.confirm_tokens.check(inp.confirm_token, token_args, key)
            key = confirmed.idempotency_key

    key = top_up["idempotency_key"] if top_up else key or new_idempotency_key(prefix)  # one key for the retry too
    async with guard.reserve(amount or Decimal(0), scope=ctx.scope) as reservation:
        if confirmed is not None:
            await ctx.services.confirm_tokens.consume(confirmed)
        try:
            client_call: Callable[..., Awaitable[Reply[ChargeResult] | Reply[ChargeAsyncResult]]] = (
                ctx.client.charge_async if route == "charge_async" else ctx.client.charge
            )
            send = functools.partial(
                client_call,
                customer_id=inp.customer_id,
                meter=inp.meter,
                quantity=inp.quantity,
                metadata=metadata,
                idempotency_key=key,
            )
            reply = await ctx.payments.charge(ctx, send, customer_id=inp.customer_id)
        except APIStatusError as exc:
            if exc.status is not None and exc.status >= 500:
                reservation.commit()  # the outcome is unknown: assume the money moved
            elif confirmed is not None:
                await ctx.services.confirm_tokens.release(confirmed)  # Drip refused it: nothing moved
            raise
        except DripError:
            reservation.commit()
            raise
        charge = reply.data.charge
        charged = charge.amount_usdc if charge else amount
        reservation.commit(Decimal(0) if reply.data.is_duplicate else charged)
    return ChargeOutput(
        status="charged",
        **base,
        amount_usdc=charged,
        charge_id=charge.id if charge else None,
        charge_status=charge.status if charge else None,
        usage_event_id=reply.data.usage_event_id,
        idempotency_key=reply.idempotency_key,
        is_duplicate=reply.data.is_duplicate,
        redacted_paths=ctx.redacted,
    )


async def run_charge_async(ctx: ToolContext, inp: ChargeAsyncInput) -> ChargeOutput:
    """`run_charge` sent as ``POST /usage/async``: the same checks, a PENDING charge."""
    return await run_charge(ctx, inp, "charge_async")


def _ledger(inp: ChargeInput, out: ChargeOutput | None, error: DripError | None) -> list[LedgerEntry]:
    """A charge that went out (or may have): previews and confirmation requests move nothing."""
    if inp.dry_run or (out is not None and out.status != "charged"):
        return []
    key = out.idempotency_key if out is not None else (error.idempotency_key if error else None)
    return [
        LedgerEntry(
            kind="charge",
            customer_id=inp.customer_id,
            meter=inp.meter,
            quantity=inp.quantity,
            amount_usdc=out.amount_usdc if out is not None else None,
            idempotency_key=key,
            outcome=("duplicate" if out.is_duplicate else "charged") if out is not None else "failed",
        )
    ]


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_charge",
        title="Charge a customer",
        description=(
            "Bill a customer for usage (POST /usage): computes quantity x the meter's unit price and deducts "
            "it from the customer's balance. MONEY MOVES and cannot be undone here. Use dry_run: true to "
            "preview the amount and balance first. Fails with PAYMENT_REQUIRED when the balance is short "
            "(offer drip_checkout). To retry after a timeout or error, call again with the same "
            "idempotency_key from the error or result: Drip then charges at most once. Never retry without it."
        ),
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=ChargeInput,
        output_model=ChargeOutput,
        handler=run_charge,
        read_only=False,
        destructive=True,
        idempotent=False,
        moves_money=True,
        ledger=_ledger,
        core=True,
    ),
    ToolSpec(
        name="drip_charge_async",
        title="Charge a customer (async)",
        description=(
            "Like drip_charge (same caps, confirmation, dry_run, idempotency_key) but queued: POST /usage/async. "
            "MONEY MOVES. charge_status is PENDING until it settles; check with drip_get_charge."
        ),
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=ChargeAsyncInput,
        output_model=ChargeOutput,
        handler=run_charge_async,
        read_only=False,
        destructive=True,
        idempotent=False,
        moves_money=True,
        ledger=_ledger,
    ),
)
