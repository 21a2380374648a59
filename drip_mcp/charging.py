"""The charge path: preview, then (later: caps and confirmation), then the charge itself.

Kept apart from the tool declaration because it is the one place where money
moves, and every safety rule for that lives here, in the order it applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drip_mcp.client import new_idempotency_key

if TYPE_CHECKING:
    from drip_mcp.tools.billing import ChargeInput, ChargeOutput
    from drip_mcp.tools.context import ToolContext

__all__ = ["run_charge"]


async def run_charge(ctx: ToolContext, inp: ChargeInput) -> ChargeOutput:
    """Preview or perform a charge."""
    from drip_mcp.tools.billing import ChargeOutput

    metadata = ctx.clean_metadata(inp.metadata)
    if inp.dry_run:
        price = await ctx.services.prices.unit_price(ctx.client, inp.meter)
        amount = None if price is None else price * inp.quantity
        balance = await ctx.client.get_balance(inp.customer_id)
        return ChargeOutput(
            status="preview",
            customer_id=inp.customer_id,
            meter=inp.meter,
            quantity=inp.quantity,
            amount_usdc=amount,
            balance_before_usdc=balance.available_usdc,
            balance_after_usdc=None if amount is None else balance.available_usdc - amount,
            idempotency_key=inp.idempotency_key or new_idempotency_key("chg"),
            redacted_paths=ctx.redacted,
        )

    reply = await ctx.client.charge(
        customer_id=inp.customer_id,
        meter=inp.meter,
        quantity=inp.quantity,
        metadata=metadata,
        idempotency_key=inp.idempotency_key,
    )
    result = reply.data
    return ChargeOutput(
        status="charged",
        customer_id=inp.customer_id,
        meter=inp.meter,
        quantity=inp.quantity,
        amount_usdc=result.charge.amount_usdc if result.charge else None,
        charge_id=result.charge.id if result.charge else None,
        charge_status=result.charge.status if result.charge else None,
        usage_event_id=result.usage_event_id,
        idempotency_key=reply.idempotency_key,
        is_duplicate=result.is_duplicate,
        redacted_paths=ctx.redacted,
    )
