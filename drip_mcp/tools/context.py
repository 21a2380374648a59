"""What a tool handler gets: the scoped client, settings, process-wide services and the call's flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult

from drip_mcp.api.client import DripClient
from drip_mcp.errors import MetadataPolicyError
from drip_mcp.redaction import MetadataPolicy, MetadataRejected, sanitize_metadata
from drip_mcp.safety.confirmation import ConfirmTokens
from drip_mcp.safety.guard import SpendGuard
from drip_mcp.safety.ledger import SessionLedger
from drip_mcp.safety.pricing import PriceBook
from drip_mcp.settings import Settings

__all__ = ["Catalogue", "NeedsClientInput", "Services", "ToolContext"]


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


@dataclass
class Services:
    """Process-wide state shared by every tool call (one per server process)."""

    secrets_dir: Path
    prices: PriceBook = field(default_factory=PriceBook)
    guard: SpendGuard = field(default_factory=SpendGuard)
    ledger: SessionLedger = field(default_factory=SessionLedger)
    confirm_tokens: ConfirmTokens = field(default_factory=ConfirmTokens)

    @classmethod
    def for_settings(cls, settings: Settings) -> Services:
        """Services with the operator's caps and the settings' state directory."""
        return cls(
            secrets_dir=settings.secrets_dir,
            guard=SpendGuard(settings.max_charge_usdc, settings.session_budget_usdc),
        )


@dataclass
class ToolContext:
    """Per-call context: which client (tenant) to use, what the call may do, and what it redacted.

    ``durable`` comes from the tool's declaration: its writes go through the outbox.
    ``allowed_tools`` are the tools this caller may use (for ``drip_ping``); ``catalogue`` searches and
    calls them (for the catalogue tools).
    """

    client: DripClient
    settings: Settings
    services: Services
    mcp: Context[Any, Any] | None = None
    durable: bool = False
    allowed_tools: tuple[str, ...] = ()
    catalogue: Catalogue | None = None
    redacted: list[str] = field(default_factory=list)

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
