"""What a tool handler gets: the scoped client, settings and process-wide services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drip_mcp.confirmation import ConfirmTokens
from drip_mcp.errors import MetadataPolicyError
from drip_mcp.keys import KeyType
from drip_mcp.ledger import SessionLedger, SpendGuard
from drip_mcp.paths import state_dir
from drip_mcp.pricing import PriceBook

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from drip_mcp.client import DripClient
    from drip_mcp.settings import Settings

__all__ = ["Services", "ToolContext"]


@dataclass
class Services:
    """Process-wide state shared by every tool call (one per server process)."""

    secrets_dir: Path = field(default_factory=lambda: state_dir() / "webhook-secrets")
    prices: PriceBook = field(default_factory=PriceBook)
    guard: SpendGuard = field(default_factory=SpendGuard)
    ledger: SessionLedger = field(default_factory=SessionLedger)
    confirm_tokens: ConfirmTokens = field(default_factory=ConfirmTokens)
    # Set by the server: the names of the tools a key type may use under the operator's filters.
    allowed_tools: Callable[[KeyType], list[str]] = field(default=lambda _kt: [], repr=False)


@dataclass
class ToolContext:
    """Per-call context: which client (tenant) to use, and what the call redacted."""

    client: DripClient
    settings: Settings
    services: Services
    mcp: Context[Any, Any] | None = None
    redacted: list[str] = field(default_factory=list)

    def clean_metadata(self, value: dict[str, Any] | None, path: str = "metadata") -> dict[str, Any] | None:
        """Apply the metadata policy; remember redacted paths; raise if the policy rejects."""
        if not value:
            return value
        from drip_mcp.redaction import MetadataPolicy, MetadataRejected, sanitize_metadata

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
