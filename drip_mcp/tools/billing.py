"""Toolset ``billing``: balances, charge history, refunds, usage history, checkout (charges: `charge`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.api.models import Charge, Money
from drip_mcp.errors import InvalidInputError
from drip_mcp.keys import KeyType
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    Metadata,
    MutationResult,
    ToolInput,
    ToolOutput,
    ToolSpec,
    from_wire,
)
from drip_mcp.tools.context import CHECKOUT_PAGE, ToolContext, UserAction
from drip_mcp.tools.declare import operation

ChargeStatus = Literal["PENDING", "PENDING_SETTLEMENT", "CONFIRMED", "FAILED", "REFUNDED", "REFUND_PENDING"]


class CustomerRef(ToolInput):
    customer_id: CustomerId


class BalanceOutput(ToolOutput):
    customer_id: str
    onchain_address: str | None = None
    balance_usdc: Money
    pending_charges_usdc: Money
    available_usdc: Money = Field(description="What can be charged now.")
    last_synced_at: str | None = None


async def get_balance(ctx: ToolContext, inp: CustomerRef) -> BalanceOutput:
    return from_wire(BalanceOutput, await ctx.client.get_balance(inp.customer_id))


class ChargeRef(ToolInput):
    charge_id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ChargeInfo(ToolOutput):
    id: str
    customer_id: str
    amount_usdc: Money
    status: str
    usage_id: str | None = None
    tx_hash: str | None = None
    failure_reason: str | None = None
    created_at: str
    confirmed_at: str | None = None


def _charge_info(c: Charge) -> ChargeInfo:
    return from_wire(ChargeInfo, c, omit={"amount_token": "amount_usdc in base units: the same number twice"})


async def get_charge(ctx: ToolContext, inp: ChargeRef) -> ChargeInfo:
    return _charge_info(await ctx.client.get_charge(inp.charge_id))


class ListChargesInput(ToolInput):
    customer_id: CustomerId | None = None
    status: ChargeStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class ListChargesOutput(ToolOutput):
    charges: list[ChargeInfo]
    count: int


async def list_charges(ctx: ToolContext, inp: ListChargesInput) -> ListChargesOutput:
    page = await ctx.client.list_charges(
        customer_id=inp.customer_id, status=inp.status, limit=inp.limit, offset=inp.offset
    )
    return ListChargesOutput(charges=[_charge_info(c) for c in page.data], count=page.count)


class RefundChargeInput(ChargeRef):
    reason: Literal["customer_request", "merchant_error", "fraud_reversal"]
    note: Annotated[str | None, Field(max_length=500, description="Why, for your records.")] = None
    idempotency_key: IdempotencyKey = None


class ListUsageInput(ToolInput):
    customer_id: CustomerId | None = None
    limit: int = Field(default=20, ge=1, le=100)


HttpUrl = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]


class CheckoutInput(ToolInput):
    amount_cents: int = Field(ge=500, le=1_000_000, description="Top-up amount in US cents (500 = $5.00).")
    return_url: HttpUrl = Field(description="Where the payer is sent after paying.")
    customer_id: CustomerId | None = None
    external_customer_id: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    cancel_url: HttpUrl | None = None
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class CheckoutOutput(MutationResult):
    checkout_id: str
    url: str = Field(description="Send the payer to this URL to top up the balance.")
    expires_at: str | None = None
    amount_usd: Decimal | None = None
    user_action: UserAction | None = Field(
        default=None,
        description="Set when the client showed the page to the user: 'accepted' means they opened it (the "
        "balance shows whether they paid). Unset: give the user the url yourself.",
    )


async def checkout(ctx: ToolContext, inp: CheckoutInput) -> CheckoutOutput:
    if inp.customer_id is None and inp.external_customer_id is None:
        raise InvalidInputError("customer_id or external_customer_id is required", details=[{"path": "customer_id"}])
    saved = ctx.payments.resumed(ctx, CHECKOUT_PAGE)  # the client's answer to the page shown below (2026-07-28)
    page = CheckoutOutput.model_validate(saved) if saved is not None else await _create_checkout(ctx, inp)
    message = f"Open the Drip checkout page to add ${page.amount_usd} to the balance."
    state = page.model_dump(mode="json")
    action = await ctx.payments.present(
        ctx, purpose=CHECKOUT_PAGE, message=message, url=page.url, page_id=page.checkout_id, state=state
    )
    return page.model_copy(update={"user_action": action})


async def _create_checkout(ctx: ToolContext, inp: CheckoutInput) -> CheckoutOutput:
    reply = await ctx.client.checkout(
        amount_cents=inp.amount_cents,
        return_url=inp.return_url,
        customer_id=inp.customer_id,
        external_customer_id=inp.external_customer_id,
        cancel_url=inp.cancel_url,
        metadata=ctx.clean_metadata(inp.metadata),
        idempotency_key=inp.idempotency_key,
    )
    return CheckoutOutput(
        checkout_id=reply.data.id,
        url=reply.data.url,
        expires_at=reply.data.expires_at,
        amount_usd=reply.data.amount_usd,
        idempotency_key=reply.idempotency_key,
        redacted_paths=ctx.redacted,
    )


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_get_balance",
        title="Get balance",
        description="Get a customer's USDC balance: total, pending charges and available now. Read-only.",
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=CustomerRef,
        output_model=BalanceOutput,
        handler=get_balance,
        read_only=True,
        destructive=False,
        idempotent=True,
        core=True,
    ),
    ToolSpec(
        name="drip_get_charge",
        title="Get charge",
        description="Get one charge by id: amount, status, usage event. Read-only.",
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=ChargeRef,
        output_model=ChargeInfo,
        handler=get_charge,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="drip_list_charges",
        title="List charges",
        description="List charges, newest first, optionally for one customer or status. Read-only.",
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=ListChargesInput,
        output_model=ListChargesOutput,
        handler=list_charges,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="drip_checkout",
        title="Create a top-up checkout",
        description=(
            "Create a hosted checkout page where a customer (or the user) tops up a Drip balance with a card. "
            "Returns a URL to open; nothing is paid until someone completes the page. Use it after a "
            "PAYMENT_REQUIRED error. " + "Safe to retry with the same idempotency_key."
        ),
        toolset="billing",
        scope=KeyType.PUBLIC,
        input_model=CheckoutInput,
        output_model=CheckoutOutput,
        handler=checkout,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    operation(
        "drip_refund_charge",
        "Refund charge",
        "Refund a CONFIRMED charge in full: the amount goes back to the customer's balance. MONEY MOVES. "
        "A charge refunds once; again is CONFLICT.",
        toolset="billing",
        endpoint="refund_charge",
        input_model=RefundChargeInput,
        destructive=True,
        idempotent=True,
        moves_money=True,
    ),
    operation(
        "drip_list_usage",
        "List usage",
        "List billable usage events, newest first, each with its charge (or null). Read-only.",
        toolset="billing",
        endpoint="list_usage",
        input_model=ListUsageInput,
    ),
)
