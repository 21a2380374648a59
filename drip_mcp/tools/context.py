"""What a tool handler gets: the scoped client, settings, process-wide services and the call's flags."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult

from drip_mcp.api.client import DripClient
from drip_mcp.errors import MetadataPolicyError
from drip_mcp.redaction import MetadataPolicy, MetadataRejected, sanitize_metadata
from drip_mcp.safety.confirmation import ConfirmTokens
from drip_mcp.safety.guard import SpendGuard
from drip_mcp.safety.ledger import ProcessLedger, SessionLedger
from drip_mcp.safety.pricing import PriceBook
from drip_mcp.settings import Settings
from drip_mcp.state.base import SecretFileStore, StateStore
from drip_mcp.state.sqlite import SqliteState

__all__ = [
    "CHECKOUT_PAGE",
    "TOP_UP_PAGE",
    "Catalogue",
    "NeedsClientInput",
    "PaymentPages",
    "PlainUrls",
    "Services",
    "ToolContext",
    "UserAction",
]

R = TypeVar("R")
UserAction = Literal["accepted", "declined", "cancelled"]
"""What the user did with a page the client showed them (URL elicitation)."""

CHECKOUT_PAGE = "drip_checkout"
"""`PaymentPages` purpose: the page drip_checkout created."""
TOP_UP_PAGE = "drip_top_up"
"""`PaymentPages` purpose: a top-up page offered after PAYMENT_REQUIRED."""


class NeedsClientInput(Exception):
    """Raised to hand an `InputRequiredResult` (2026-07-28 elicitation round) back to the client."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("client input required")
        self.result = result


class Catalogue(Protocol):
    """The operations this caller may use, as the server sees them (for ``drip_find_operations`` and
    ``drip_call_operation``): searching and calling go through exactly the checks of a direct call."""

    def find(self, query: str | None, toolset: str | None) -> Sequence[Any]:
        """The caller's operations (`ToolSpec`s) matching `query` and `toolset`, best first."""
        ...

    async def call(self, operation: str, arguments: dict[str, Any]) -> CallToolResult | InputRequiredResult:
        """Call `operation` as if it had been called directly."""
        ...


class PaymentPages(Protocol):
    """How a tool puts a payment page in front of the user; `drip_mcp.features.elicitation` implements it.

    Declared here, implemented above the tools layer and wired in by the server, so the arrow points down.
    """

    def resumed(self, ctx: ToolContext, purpose: str) -> Mapping[str, Any] | None:
        """The state saved when `purpose`'s page was shown, if this call is the client's answer to it."""
        ...

    async def present(
        self, ctx: ToolContext, *, purpose: str, message: str, url: str, page_id: str, state: Mapping[str, Any]
    ) -> UserAction | None:
        """Show `url` to the user and return what they did; None when the client cannot show it."""
        ...

    async def charge(self, ctx: ToolContext, send: Callable[[], Awaitable[R]], *, customer_id: str) -> R:
        """`send()` the charge; on PAYMENT_REQUIRED, offer a top-up page and send once more after it."""
        ...


class PlainUrls:
    """The default `PaymentPages`: nothing is shown; tools return the URL (or the error) for the model."""

    def resumed(self, ctx: ToolContext, purpose: str) -> Mapping[str, Any] | None:
        return None

    async def present(
        self, ctx: ToolContext, *, purpose: str, message: str, url: str, page_id: str, state: Mapping[str, Any]
    ) -> UserAction | None:
        return None

    async def charge(self, ctx: ToolContext, send: Callable[[], Awaitable[R]], *, customer_id: str) -> R:
        return await send()


@dataclass
class Services:
    """State shared by every tool call of a server, kept per tenant in a state store (`drip_mcp.state`).

    ``per_process`` (stdio) keys the ledger and the budget by tenant *and* this
    process (`scope_of`), kept in this process's memory (no other process can read such a
    scope); otherwise by tenant only, in the store, across every process sharing it.
    ``files`` records which tenant wrote each webhook secret file.
    """

    secrets_dir: Path
    prices: PriceBook = field(default_factory=PriceBook)
    guard: SpendGuard = field(default_factory=SpendGuard)
    ledger: SessionLedger = field(default_factory=SessionLedger)
    confirm_tokens: ConfirmTokens = field(default_factory=ConfirmTokens)
    files: SecretFileStore = field(default_factory=SqliteState)
    per_process: bool = False
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def for_settings(
        cls, settings: Settings, store: StateStore | None = None, *, per_process: bool = False
    ) -> Services:
        """Services with the operator's caps and the settings' state directory, keeping state in `store`.

        Without a `store`, state lives in memory for this process only.
        """
        state: StateStore = store if store is not None else SqliteState()
        # A per-process scope dies with this process and no other can read it: writing its ledger to the
        # shared file cost every usage call a commit, and left each past stdio session's rows in it.
        return cls(
            secrets_dir=settings.secrets_dir,
            guard=SpendGuard(
                settings.max_charge_usdc, settings.session_budget_usdc, store=SqliteState() if per_process else state
            ),
            ledger=SessionLedger(store=ProcessLedger() if per_process else state),
            confirm_tokens=ConfirmTokens(store=state),
            files=state,
            per_process=per_process,
        )

    def scope_of(self, tenant: str) -> str:
        """The ledger and budget scope of `tenant`: the tenant, or the tenant in this process (stdio)."""
        return f"{tenant}@{self.instance}" if self.per_process else tenant


@dataclass
class ToolContext:
    """Per-call context: which client (tenant) to use, what the call may do, and what it redacted.

    ``durable`` comes from the tool's declaration: its writes go through the outbox.
    ``allowed_tools`` are the tools this caller may use (for ``drip_ping``); ``catalogue`` searches and
    calls them (for the catalogue tools).
    ``payments`` shows checkout pages to the user when the client can (URL elicitation).
    ``tenant`` is who the call acts for (`drip_mcp.state.tenant_of`); all state it touches is the tenant's.
    """

    client: DripClient
    settings: Settings
    services: Services
    tenant: str
    mcp: Context[Any, Any] | None = None
    durable: bool = False
    allowed_tools: tuple[str, ...] = ()
    catalogue: Catalogue | None = None
    redacted: list[str] = field(default_factory=list)
    payments: PaymentPages = field(default_factory=PlainUrls)

    @property
    def scope(self) -> str:
        """The tenant's ledger and budget scope (`Services.scope_of`)."""
        return self.services.scope_of(self.tenant)

    def clean_metadata(self, value: dict[str, Any] | None, path: str = "metadata") -> dict[str, Any] | None:
        """Apply the metadata policy; remember redacted paths; raise if the policy rejects."""
        if not value:
            return value
        try:
            result = sanitize_metadata(value, path=path, policy=MetadataPolicy(self.settings.metadata_policy))
        except MetadataRejected as exc:
            raise MetadataPolicyError(
                str(exc), details=[{"path": p, "message": exc.reason} for p in exc.paths]
            ) from None
        self.redacted.extend(result.redacted_paths)
        return result.value

    async def progress(self, done: float, total: float, message: str | None = None) -> None:
        """Report progress when the client asked for it (a no-op otherwise)."""
        if self.mcp is not None:
            await self.mcp.report_progress(done, total, message)
