"""Toolset ``contracts`` (secret key only): per-customer pricing contracts and their price overrides.

A price override on an ACTIVE contract in force replaces the pricing plan's unit price for that
customer's later charges of that meter. All pass-through `operation` declarations; ``included_units``
is a typed list here (portable schemas have no open maps) and goes to Drip as its ``{unitType: units}`` map.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from drip_mcp.tools.base import CustomerId, IdempotencyKey, Metadata, Meter, ToolInput, ToolSpec, UsdcAmount
from drip_mcp.tools.declare import WireResult, operation

__all__ = ["TOOLS"]


ContractId = Annotated[
    str,
    Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Contract id (drip_list_contracts)."
    ),
]
Status = Literal["ACTIVE", "EXPIRED", "CANCELLED"]
Name = Annotated[str, Field(min_length=1, max_length=255)]
IsoDate = Annotated[
    str,
    Field(
        max_length=40,
        pattern=r"^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
        r"(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?$",
        description="ISO-8601 date or date-time (UTC if no offset), e.g. 2026-07-01.",
    ),
]
DiscountPct = Annotated[float | None, Field(ge=0, le=100, description="Percent off usage charges.")]


class IncludedUnits(BaseModel):
    """Units of one meter included in the contract."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    unit_type: Meter
    units: int = Field(ge=0, le=10**12)


def _units_map(items: list[IncludedUnits] | None) -> dict[str, int] | None:
    """Drip's shape: ``{unitType: units}``."""
    return None if items is None else {i.unit_type: i.units for i in items}


class _Terms(ToolInput):
    end_date: IsoDate | None = None
    minimum_usdc: UsdcAmount | None = Field(default=None, description="Minimum spend (USDC).")
    maximum_usdc: UsdcAmount | None = Field(default=None, description="Spend cap (USDC).")
    discount_pct: DiscountPct = None
    prepaid_amount_usdc: UsdcAmount | None = None
    prepaid_rollover: bool | None = None
    included_units: list[IncludedUnits] | None = Field(default=None, max_length=100)
    metadata: Metadata = None
    idempotency_key: IdempotencyKey = None

    @field_serializer("included_units")
    def _included_units(self, items: list[IncludedUnits] | None) -> dict[str, int] | None:
        return _units_map(items)


class CreateContractInput(_Terms):
    customer_id: CustomerId
    name: Name
    start_date: IsoDate


class ListContractsInput(ToolInput):
    customer_id: CustomerId | None = None
    status: Status | None = None


class ContractRef(ToolInput):
    contract_id: ContractId


class UpdateContractInput(_Terms):
    contract_id: ContractId
    name: Name | None = None
    start_date: IsoDate | None = None
    status: Status | None = None


class AddOverrideInput(ContractRef):
    unit_type: Meter
    unit_price_usd: UsdcAmount = Field(description="This customer's price per unit (USD, paid in USDC).")
    idempotency_key: IdempotencyKey = None


class RemoveOverrideInput(ContractRef):
    unit_type: Meter


def _op(name: str, title: str, description: str, **kw: Any) -> ToolSpec[Any, WireResult]:
    return operation(name, title, description, toolset="contracts", endpoint=name.removeprefix("drip_"), **kw)


TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    _op(
        "drip_create_contract",
        "Create contract",
        "Create a customer's pricing contract (dates, min/max spend, discount, prepaid, included units).",
        input_model=CreateContractInput,
    ),
    _op(
        "drip_list_contracts",
        "List contracts",
        "List pricing contracts, by customer or status. Read-only.",
        input_model=ListContractsInput,
    ),
    _op(
        "drip_get_contract",
        "Get contract",
        "Get a contract with its terms and price overrides. Read-only.",
        input_model=ContractRef,
    ),
    _op(
        "drip_update_contract",
        "Update contract",
        "Change a contract's terms or status.",
        input_model=UpdateContractInput,
        idempotent=True,
    ),
    _op(
        "drip_delete_contract",
        "Delete contract",
        "Cancel a contract: its price overrides stop applying. Cannot be undone.",
        input_model=ContractRef,
        destructive=True,
    ),
    _op(
        "drip_add_contract_override",
        "Add contract price override",
        "Set this customer's unit price for a meter: every later charge of that meter costs this price.",
        input_model=AddOverrideInput,
        idempotent=True,
    ),
    _op(
        "drip_remove_contract_override",
        "Remove contract price override",
        "Remove a contract's price for a meter: later charges go back to the pricing plan's price.",
        input_model=RemoveOverrideInput,
        destructive=True,
    ),
)
