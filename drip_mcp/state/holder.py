"""`StateSlot`: a `StateStore` whose backing store is opened later (in an ASGI lifespan).

The HTTP app builds its MCP server (and so its services) before its lifespan
opens the store, as `drip_mcp.http.tenants.TenantHolder` does for the tenant
pool; every call is forwarded to the store the lifespan put in the slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from drip_mcp.errors import ConfigurationError
from drip_mcp.state.base import OutboxStore, StateStore

__all__ = ["StateSlot"]


class StateSlot:
    """Forwards to the store set with `fill` (and cleared with `empty`); an error while empty."""

    def __init__(self) -> None:
        self._store: StateStore | None = None

    def fill(self, store: StateStore) -> None:
        self._store = store

    def empty(self) -> None:
        self._store = None

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise ConfigurationError("the state store is not open (the server's lifespan has not started)")
        return self._store

    @property
    def kind(self) -> str:
        return self.store.kind

    @property
    def shared(self) -> bool:
        return self.store.shared

    @property
    def outbox(self) -> OutboxStore | None:
        return self.store.outbox

    async def schema_version(self) -> int:
        return await self.store.schema_version()

    async def add_ledger_entry(self, scope: str, entry: Mapping[str, Any], *, keep: int) -> None:
        await self.store.add_ledger_entry(scope, entry, keep=keep)

    async def ledger_entries(self, scope: str, *, last: int) -> list[dict[str, Any]]:
        return await self.store.ledger_entries(scope, last=last)

    async def reserve(self, scope: str, amount: Decimal, budget: Decimal | None) -> None:
        await self.store.reserve(scope, amount, budget)

    async def settle(self, scope: str, reserved: Decimal, spent: Decimal | None) -> None:
        await self.store.settle(scope, reserved, spent)

    async def budget_totals(self, scope: str) -> tuple[Decimal, Decimal]:
        return await self.store.budget_totals(scope)

    async def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        return await self.store.use_nonce(nonce, expires_at, now)

    async def release_nonce(self, nonce: str) -> None:
        await self.store.release_nonce(nonce)

    async def nonce_used(self, nonce: str, now: float) -> bool:
        return await self.store.nonce_used(nonce, now)

    async def shared_secret(self, name: str) -> bytes:
        return await self.store.shared_secret(name)

    async def own_secret_file(self, tenant: str, webhook_id: str) -> None:
        await self.store.own_secret_file(tenant, webhook_id)

    async def secret_file_owner(self, webhook_id: str) -> str | None:
        return await self.store.secret_file_owner(webhook_id)

    async def disown_secret_file(self, tenant: str, webhook_id: str) -> bool:
        return await self.store.disown_secret_file(tenant, webhook_id)

    async def save_tenant_key(self, fingerprint: str, sealed: bytes) -> None:
        await self.store.save_tenant_key(fingerprint, sealed)

    async def tenant_key(self, fingerprint: str) -> bytes | None:
        return await self.store.tenant_key(fingerprint)
