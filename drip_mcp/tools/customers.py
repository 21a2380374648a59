"""Toolset ``customers``: create, get, list and update the customers being billed, and their spending caps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from drip_mcp.api.models import Customer
from drip_mcp.errors import ConflictError, InvalidInputError
from drip_mcp.keys import KeyType
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    Metadata,
    MutationResult,
    PositiveQuantity,
    ToolInput,
    ToolOutput,
    ToolSpec,
    from_wire,
)
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.declare import operation

CustomerStatus = Literal["ACTIVE", "LOW_BALANCE", "PAUSED"]
ExternalCustomerId = Annotated[str, Field(min_length=1, max_length=255)]
# The customer's email is PII: a reply that carries it has it removed before the model sees it.
_NO_PII = {"email": "PII"}


class CustomerInfo(ToolOutput):
    id: str = Field(description="Use as customer_id in other tools.")
    external_customer_id: str | None = None
    onchain_address: str | None = None
    is_internal: bool = False
    status: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str


def _info(c: Customer) -> CustomerInfo:
    # The customer's email is PII: it never enters the model's context (DESIGN: metadata safety).
    return from_wire(CustomerInfo, c, omit={"email": "PII", "updated_at": "not needed to bill or find a customer"})


class CreateCustomerInput(ToolInput):
    external_customer_id: Annotated[
        str | None,
        Field(min_length=1, max_length=255, description="Your own id for the customer (e.g. user id)."),
    ] = None
    onchain_address: Annotated[
        str | None, Field(pattern=r"^0x[a-fA-F0-9]{40}$", description="The customer's wallet address.")
    ] = None
    is_internal: bool | None = Field(default=None, description="An internal customer (your own usage); default false.")
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class CreateCustomerOutput(MutationResult):
    customer: CustomerInfo


async def create_customer(ctx: ToolContext, inp: CreateCustomerInput) -> CreateCustomerOutput:
    if inp.external_customer_id is None and inp.onchain_address is None:
        raise InvalidInputError(
            "external_customer_id or onchain_address is required", details=[{"path": "external_customer_id"}]
        )
    reply = await ctx.client.create_customer(
        external_customer_id=inp.external_customer_id,
        onchain_address=inp.onchain_address,
        is_internal=inp.is_internal,
        metadata=ctx.clean_metadata(inp.metadata),
        idempotency_key=inp.idempotency_key,
    )
    return CreateCustomerOutput(
        customer=_info(reply.data), idempotency_key=reply.idempotency_key, redacted_paths=ctx.redacted
    )


class GetOrCreateCustomerInput(ToolInput):
    external_customer_id: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        description="Your own id for the customer (e.g. your user id)."
    )
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class GetOrCreateCustomerOutput(MutationResult):
    customer: CustomerInfo
    created: bool = Field(description="True when this call created the customer; false when it already existed.")


async def get_or_create_customer(ctx: ToolContext, inp: GetOrCreateCustomerInput) -> GetOrCreateCustomerOutput:
    """Create, or on 409 read the existing customer, as the SDKs' get_or_create_customer does."""
    metadata = ctx.clean_metadata(inp.metadata)
    try:
        reply = await ctx.client.create_customer(
            external_customer_id=inp.external_customer_id, metadata=metadata, idempotency_key=inp.idempotency_key
        )
    except ConflictError as exc:
        existing = exc.existing_id or await _find_by_external_id(ctx, inp.external_customer_id)
        if existing is None:
            raise
        customer = await ctx.client.get_customer(existing)
        key = exc.idempotency_key or ""
        return GetOrCreateCustomerOutput(
            customer=_info(customer), created=False, idempotency_key=key, is_duplicate=True, redacted_paths=ctx.redacted
        )
    return GetOrCreateCustomerOutput(
        customer=_info(reply.data), created=True, idempotency_key=reply.idempotency_key, redacted_paths=ctx.redacted
    )


async def _find_by_external_id(ctx: ToolContext, external_id: str) -> str | None:
    """The SDKs' fallback when a 409 names no id: the newest 100 customers, matched by external id."""
    page = await ctx.client.list_customers(limit=100)
    return next((c.id for c in page.data if c.external_customer_id == external_id), None)


class GetCustomerInput(ToolInput):
    customer_id: CustomerId


async def get_customer(ctx: ToolContext, inp: GetCustomerInput) -> CustomerInfo:
    return _info(await ctx.client.get_customer(inp.customer_id))


class ListCustomersInput(ToolInput):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)
    status: CustomerStatus | None = None


class ListCustomersOutput(ToolOutput):
    customers: list[CustomerInfo]
    count: int


async def list_customers(ctx: ToolContext, inp: ListCustomersInput) -> ListCustomersOutput:
    page = await ctx.client.list_customers(limit=inp.limit, offset=inp.offset, status=inp.status)
    return ListCustomersOutput(customers=[_info(c) for c in page.data], count=page.count)


class UpdateCustomerInput(ToolInput):
    customer_id: CustomerId
    external_customer_id: ExternalCustomerId | None = Field(default=None, description="Your new id for them.")
    status: CustomerStatus | None = Field(default=None, description="PAUSED blocks charges; ACTIVE resumes.")
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None


class CustomerWrite(ToolInput):
    customer_id: CustomerId
    idempotency_key: IdempotencyKey = None


class SetSpendingCapInput(ToolInput):
    customer_id: CustomerId
    cap_type: Literal["DAILY_CHARGE_LIMIT", "MONTHLY_CHARGE_LIMIT", "SINGLE_CHARGE_LIMIT"]
    limit_value: PositiveQuantity = Field(description="The limit in USDC, e.g. 50 for $50.")
    auto_block: bool = Field(default=True, description="Refuse charges that would cross the limit (else alert).")
    idempotency_key: IdempotencyKey = None


class CustomerRef(ToolInput):
    customer_id: CustomerId


class SpendingCapRef(ToolInput):
    customer_id: CustomerId
    cap_id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")] = Field(
        description="Cap id (drip_get_customer_spending_caps)."
    )


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    ToolSpec(
        name="drip_get_or_create_customer",
        title="Get or create customer",
        description=(
            "Get the customer with your external_customer_id, creating it if it does not exist: the safe way "
            "to get a customer_id before tracking or charging. No money moves."
        ),
        toolset="customers",
        scope=KeyType.PUBLIC,
        input_model=GetOrCreateCustomerInput,
        output_model=GetOrCreateCustomerOutput,
        handler=get_or_create_customer,
        read_only=False,
        destructive=False,
        idempotent=True,
        core=True,
    ),
    ToolSpec(
        name="drip_create_customer",
        title="Create customer",
        description=(
            "Create a Drip customer to bill, identified by your external_customer_id and/or an on-chain "
            "address. If it already exists, the error (CONFLICT) carries existing_id: use that id instead. "
            "No money moves."
        ),
        toolset="customers",
        scope=KeyType.PUBLIC,
        input_model=CreateCustomerInput,
        output_model=CreateCustomerOutput,
        handler=create_customer,
        read_only=False,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="drip_get_customer",
        title="Get customer",
        description="Get one customer by Drip id. Read-only.",
        toolset="customers",
        scope=KeyType.PUBLIC,
        input_model=GetCustomerInput,
        output_model=CustomerInfo,
        handler=get_customer,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="drip_list_customers",
        title="List customers",
        description="List customers, newest first (find a customer_id by external_customer_id). Read-only.",
        toolset="customers",
        scope=KeyType.PUBLIC,
        input_model=ListCustomersInput,
        output_model=ListCustomersOutput,
        handler=list_customers,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    operation(
        "drip_update_customer",
        "Update customer",
        "Change a customer's external_customer_id, status (PAUSED blocks charges) or metadata. No money moves.",
        toolset="customers",
        endpoint="update_customer",
        input_model=UpdateCustomerInput,
        destructive=True,
        idempotent=True,
        omit=_NO_PII,
    ),
    operation(
        "drip_provision_customer",
        "Provision customer",
        "Deploy the customer's on-chain smart account (safe to repeat: already_deployed). No charge.",
        toolset="customers",
        endpoint="provision_customer",
        input_model=CustomerWrite,
        idempotent=True,
        omit=_NO_PII,
    ),
    operation(
        "drip_sync_customer_balance",
        "Sync customer balance",
        "Refresh a customer's cached balance from chain; returns the previous and new balance. No charge.",
        toolset="customers",
        endpoint="sync_customer_balance",
        input_model=CustomerWrite,
        idempotent=True,
    ),
    operation(
        "drip_set_customer_spending_cap",
        "Set spending cap",
        "Limit what a customer can be charged per day, per month or per charge (USDC). With auto_block, Drip "
        "refuses a charge that would cross it. Replaces the active cap of that type.",
        toolset="customers",
        endpoint="set_customer_spending_cap",
        input_model=SetSpendingCapInput,
        destructive=True,
    ),
    operation(
        "drip_get_customer_spending_caps",
        "Get spending caps",
        "List a customer's active spending caps with their usage this period. Read-only.",
        toolset="customers",
        endpoint="get_customer_spending_caps",
        input_model=CustomerRef,
    ),
    operation(
        "drip_remove_customer_spending_cap",
        "Remove spending cap",
        "Remove a customer's spending cap: charges are no longer limited by it.",
        toolset="customers",
        endpoint="remove_customer_spending_cap",
        input_model=SpendingCapRef,
        destructive=True,
    ),
)
