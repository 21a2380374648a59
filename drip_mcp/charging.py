"""The charge path: every safety rule for moving money, in the order it applies.

1. metadata policy (``--max-quantity`` is applied earlier, by the server, to every usage write);
2. ``dry_run``: price x quantity, the balance now and after; nothing is charged;
3. the price, when any cap or confirmation needs it (unknown price with a cap
   set: refuse, fail closed);
4. the per-charge cap;
5. confirmation (``--confirm-charges``): ask the user through elicitation when
   the client supports it, else hand out a one-time confirm token;
6. the session budget: reserve before sending, commit on success, release when
   Drip refuses (kept when the outcome is unknown);
7. the charge itself (``POST /usage``), with one idempotency key for all retries.

Every refusal is a structured error and sends nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from drip_mcp.client import new_idempotency_key
from drip_mcp.errors import APIStatusError, ConfirmationError, DripError
from drip_mcp.models import format_money

if TYPE_CHECKING:
    from mcp_types import InputRequiredResult

    from drip_mcp.tools.billing import ChargeInput, ChargeOutput
    from drip_mcp.tools.context import ToolContext

__all__ = ["ChargeConfirmation", "NeedsClientInput", "run_charge"]


class NeedsClientInput(Exception):
    """Raised to hand an `InputRequiredResult` (2026-07-28 elicitation round) back to the client."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("client input required")
        self.result = result


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
    from mcp.server.mcpserver import AcceptedElicitation, Elicit, Resolve
    from mcp.server.mcpserver.resolve import build_resolver_plans, resolve_arguments
    from mcp_types import InputRequiredResult

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


async def run_charge(ctx: ToolContext, inp: ChargeInput) -> ChargeOutput:
    """Preview, check, confirm and perform a charge."""
    from drip_mcp.tools.billing import ChargeOutput

    guard, settings = ctx.services.guard, ctx.settings
    metadata = ctx.clean_metadata(inp.metadata)  # --max-quantity was applied by the server, for every write
    base: dict[str, Any] = {"customer_id": inp.customer_id, "meter": inp.meter, "quantity": inp.quantity}

    if inp.dry_run:
        return ChargeOutput(
            status="preview",
            **base,
            **await _preview(ctx, inp, await _price(ctx, inp)),
            idempotency_key=inp.idempotency_key or new_idempotency_key("chg"),
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
    if settings.confirm_charges:
        # Bound to the account too: with per-request keys, one tenant's token is useless to another.
        token_args = {**base, "metadata": metadata, "account": ctx.client.api_key.fingerprint}
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
            key = key or new_idempotency_key("chg")
            issued = ctx.services.confirm_tokens.issue(token_args, key)
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
            bound_key = ctx.services.confirm_tokens.redeem(inp.confirm_token, token_args)
            if key is not None and key != bound_key:
                raise ConfirmationError(
                    "idempotency_key differs from the one the confirmation was issued for; nothing was charged.",
                    code="CONFIRMATION_MISMATCH",
                )
            key = bound_key

    with guard.reserve(amount or Decimal(0)) as reservation:
        try:
            reply = await ctx.client.charge(
                customer_id=inp.customer_id,
                meter=inp.meter,
                quantity=inp.quantity,
                metadata=metadata,
                idempotency_key=key,
            )
        except APIStatusError as exc:
            if exc.status is not None and exc.status >= 500:
                reservation.commit()  # the outcome is unknown: assume the money moved
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
