"""What a tool handler gets: the scoped client, settings, process-wide services and the call's flags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import InputRequiredResult

from drip_mcp.api.client import DripClient
from drip_mcp.errors import MetadataPolicyError
from drip_mcp.redaction import MetadataPolicy, MetadataRejected, sanitize_metadata
from drip_mcp.safety.confirmation import ConfirmTokens
from drip_mcp.safety.guard import SpendGuard
from drip_mcp.safety.ledger import SessionLedger
from drip_mcp.safety.pricing import PriceBook
from drip_mcp.settings import Settings
from drip_mcp.state.base import SecretFileStore, StateStore
from drip_mcp.state.sqlite import SqliteState

__all__ = ["NeedsClientInput", "Services", "ToolContext"]


class NeedsClientInput(Exception):
    """Raised to hand an `InputRequiredResult` (2026-07-28 elicitation round) back to the client."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("client input required")
        self.result = result


@dataclass
class Services:
    """State shared by every tool call of a server, kept per tenant in a state store (`drip_mcp.state`).

    ``per_process`` (stdio) keys the ledger and the budget by tenant *and* this
    process (`scope_of`); otherwise by tenant only, across every process sharing
    the store. ``files`` records which tenant wrote each webhook secret file.
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
        return cls(
            secrets_dir=settings.secrets_dir,
            guard=SpendGuard(settings.max_charge_usdc, settings.session_budget_usdc, store=state),
            ledger=SessionLedger(store=state),
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
    ``allowed_tools`` are the tools this caller may use (for ``drip_ping``).
    ``tenant`` is who the call acts for (`drip_mcp.state.tenant_of`); all state it touches is the tenant's.
    """

    client: DripClient
    settings: Settings
    services: Services
    tenant: str
    mcp: Context[Any, Any] | None = None
    durable: bool = False
    allowed_tools: tuple[str, ...] = ()
    redacted: list[str] = field(default_factory=list)

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
