"""Three workflow prompts: which tools to call, in which order, for a task people ask for often.

Nothing depends on them (client support varies): each only spells out a sequence of tool calls the
tool descriptions already allow. A prompt is listed, and served, only when every tool it names is
callable with the caller's key under the operator's filters (``--read-only`` hides the billing one).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Final

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import Field

__all__ = ["PROMPTS", "PromptScope", "PromptSpec", "register"]

AllowedTools = Callable[[], Collection[str]]

CustomerArg = Annotated[str, Field(description="Drip customer id (completions offered).")]
MeterArg = Annotated[str, Field(description="Meter name, a pricing plan's unit type (completions offered).")]
WorkflowArg = Annotated[str, Field(description="Workflow slug such as 'research_agent' (completions offered).")]
RunArg = Annotated[str, Field(description="The finished run's id (from drip_start_run or drip_record_run).")]


@dataclass(frozen=True)
class PromptSpec:
    """One prompt: its name, what it says, and the tools it names (all must be callable to list it)."""

    name: str
    title: str
    description: str
    tools: tuple[str, ...]
    render: Callable[..., str]


def bill_agent_run(customer_id: CustomerArg, run_id: RunArg, meter: MeterArg) -> str:
    return f"""Bill customer {customer_id} for agent run {run_id} on meter {meter}. Money moves in step 4; \
follow the order.

1. Call drip_get_run_timeline with run_id "{run_id}". Check that the run ended (status COMPLETED, \
FAILED, CANCELLED or TIMEOUT) and work out the billable quantity in {meter}'s unit from its events and \
summary. If the run is still PENDING or RUNNING, stop and say so.
2. Call drip_list_meters and confirm that "{meter}" is an active meter; note its unit price.
3. Call drip_charge with customer_id "{customer_id}", meter "{meter}", that quantity, dry_run: true and \
metadata {{"run_id": "{run_id}"}}. Show the amount and the balance after to the user.
4. If the balance after is not negative and the user agrees, call drip_charge again with the same \
arguments, dry_run: false and the idempotency_key the preview returned. If it fails with \
PAYMENT_REQUIRED, call drip_checkout for the customer and give the user its url; after they pay, \
repeat the charge with the same idempotency_key. After a timeout, retry with that key, never without it.
5. Call drip_get_charge with the charge_id to confirm its status, and report amount, status and charge id."""


def reconcile_customer_balance(customer_id: CustomerArg) -> str:
    return f"""Reconcile the Drip balance of customer {customer_id}. Read only: change nothing.

1. Call drip_get_customer with customer_id "{customer_id}" to confirm the customer exists and is active.
2. Call drip_get_balance: note balance_usdc, pending_charges_usdc and available_usdc.
3. Call drip_list_charges with customer_id "{customer_id}" and limit 100 (page with offset while \
count says there are more). Add up CONFIRMED, PENDING and PENDING_SETTLEMENT amounts, and list \
FAILED and REFUNDED charges separately.
4. Call drip_session_summary to see what this server charged the customer in this session.
5. Report: the balance, the sum of pending charges against pending_charges_usdc, failed charges that \
may need a retry (each with its idempotency key if known), and any mismatch. Suggest drip_checkout \
only if available_usdc cannot cover the customer's usual charges."""


def set_up_agent_metering(workflow: WorkflowArg, meter: MeterArg) -> str:
    return f"""Set up metering for a new agent, workflow "{workflow}", metered in "{meter}".

1. Call drip_list_meters. If "{meter}" is not an active meter, stop: a pricing plan with unit type \
"{meter}" must be created in Drip first (tracking against an unknown meter cannot be priced).
2. Call drip_list_workflows; if "{workflow}" is missing, call drip_create_workflow with slug "{workflow}".
3. For each job the agent does for a customer: call drip_start_run (customer_id, workflow \
"{workflow}"), drip_emit_event for its notable steps, then drip_end_run with the final status. For a \
job that is already finished, one drip_record_run call does all three.
4. Meter the work with drip_track_usage (customer_id, meter "{meter}", quantity): this records usage \
without moving money. Charging is a separate, explicit step (drip_charge).
5. Metadata carries operational context only (model, tool, status, latency): never prompts, outputs, \
PII or secrets."""


PROMPTS: Final[tuple[PromptSpec, ...]] = (
    PromptSpec(
        name="bill_agent_run",
        title="Bill a finished agent run",
        description="Price a finished run from its timeline, preview the charge, then charge once (idempotently).",
        tools=("drip_get_run_timeline", "drip_list_meters", "drip_charge", "drip_checkout", "drip_get_charge"),
        render=bill_agent_run,
    ),
    PromptSpec(
        name="reconcile_customer_balance",
        title="Reconcile a customer's balance",
        description="Compare a customer's balance with their charges and this session's ledger; read only.",
        tools=("drip_get_customer", "drip_get_balance", "drip_list_charges", "drip_session_summary"),
        render=reconcile_customer_balance,
    ),
    PromptSpec(
        name="set_up_agent_metering",
        title="Set up metering for a new agent",
        description="Check the meter, create the workflow, then record runs and track usage for an agent.",
        tools=(
            "drip_list_meters",
            "drip_list_workflows",
            "drip_create_workflow",
            "drip_start_run",
            "drip_emit_event",
            "drip_end_run",
            "drip_record_run",
            "drip_track_usage",
        ),
        render=set_up_agent_metering,
    ),
)
_BY_NAME: Final = {p.name: p for p in PROMPTS}


class PromptScope:
    """Middleware: list and serve only the prompts whose tools the caller may call."""

    def __init__(self, allowed_tools: AllowedTools) -> None:
        self._allowed_tools = allowed_tools

    def _served(self, name: Any) -> bool:
        spec = _BY_NAME.get(name) if isinstance(name, str) else None
        return spec is None or set(spec.tools) <= set(self._allowed_tools())

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "prompts/get" and isinstance(ctx.params, dict) and not self._served(ctx.params.get("name")):
            name = ctx.params.get("name")
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Prompt {name!r} is not available: it needs tools this key or operator does not allow.",
            )
        result = await call_next(ctx)
        if ctx.method == "prompts/list" and isinstance(result, dict) and isinstance(result.get("prompts"), list):
            result["prompts"] = [p for p in result["prompts"] if self._served(p.get("name"))]
        return result


def register(server: MCPServer[Any], allowed_tools: AllowedTools) -> None:
    """Add `PROMPTS` to `server`, and the middleware that hides those whose tools are not callable."""
    for spec in PROMPTS:
        server.prompt(name=spec.name, title=spec.title, description=spec.description)(spec.render)
    server.middleware.append(PromptScope(allowed_tools))
