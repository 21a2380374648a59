"""What the state store keeps, as small protocols: ledger, budgets, nonces, secret files, tenant keys, outbox.

Two implementations: `drip_mcp.state.sqlite.SqliteState` (the default: a file in
the state directory, or ``:memory:`` for one process) and
`drip_mcp.state.postgres.PostgresState` (``--state-url postgresql://...``,
shared by every process of a fleet). Every method is a coroutine and every
row is keyed by its tenant (or by a budget scope derived from it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from drip_mcp.errors import DripError

__all__ = [
    "BudgetExceeded",
    "BudgetStore",
    "KeyedStatus",
    "LedgerStore",
    "NonceStore",
    "OutboxCounts",
    "OutboxRecord",
    "OutboxRow",
    "OutboxStore",
    "SecretFileStore",
    "StateStore",
    "TenantKeyStore",
]

Status = Literal["pending", "sent", "dead"]


class BudgetExceeded(Exception):
    """A reservation that would take a budget scope past its budget; `left` is what remains."""

    def __init__(self, left: Decimal) -> None:
        super().__init__(f"budget exceeded ({left} left)")
        self.left = left


LEDGER_PRUNE_EVERY = 64
"""A ledger insert whose row id is a multiple of this also drops the scope's entries beyond its newest ``keep``.

Pruning on every insert doubled the cost of the write each usage call makes;
readers ask for the newest ``last`` entries, so the few extra rows never show.
"""


class LedgerStore(Protocol):
    async def add_ledger_entry(self, scope: str, entry: Mapping[str, Any], *, keep: int) -> None:
        """Append one JSON-able entry for `scope`; from time to time drop all but its newest `keep` entries."""

    async def ledger_entries(self, scope: str, *, last: int) -> list[dict[str, Any]]:
        """The scope's newest `last` entries, oldest first."""


class BudgetStore(Protocol):
    async def reserve(self, scope: str, amount: Decimal, budget: Decimal | None) -> None:
        """Atomically add `amount` to the scope's reserved total, or raise `BudgetExceeded`."""

    async def settle(self, scope: str, reserved: Decimal, spent: Decimal | None) -> None:
        """Release `reserved` and count `spent` (None: nothing) as spent."""

    async def budget_totals(self, scope: str) -> tuple[Decimal, Decimal]:
        """(spent, reserved) of the scope."""


class NonceStore(Protocol):
    async def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        """Mark `nonce` used; False when it was already used (expired nonces are forgotten)."""

    async def release_nonce(self, nonce: str) -> None:
        """Forget that `nonce` was used (its charge was refused, so the confirmation still stands)."""

    async def nonce_used(self, nonce: str, now: float) -> bool:
        """Whether `nonce` was used and has not expired (a read: it uses nothing up)."""

    async def shared_secret(self, name: str) -> bytes:
        """A 32-byte secret every process sharing the store agrees on (made on first use)."""


class SecretFileStore(Protocol):
    async def own_secret_file(self, tenant: str, webhook_id: str) -> None:
        """Record that `tenant` wrote the secret file of `webhook_id` (the last writer owns it)."""

    async def secret_file_owner(self, webhook_id: str) -> str | None:
        """The tenant that wrote the secret file of `webhook_id`, if any."""

    async def disown_secret_file(self, tenant: str, webhook_id: str) -> bool:
        """Forget `tenant`'s ownership; False when `tenant` did not own it."""


class TenantKeyStore(Protocol):
    async def save_tenant_key(self, fingerprint: str, sealed: bytes) -> None:
        """Keep a tenant's Drip key, sealed under the operator's key (`drip_mcp.state.sealing`)."""

    async def tenant_key(self, fingerprint: str) -> bytes | None:
        """The sealed key of a tenant, if stored."""


class OutboxRecord(Protocol):
    """What a drainer reads from a stored request (`drip_mcp.api.outbox.OutboxEntry` or `OutboxRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def body(self) -> str: ...
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class KeyedStatus:
    """Where one stored write stands, by its idempotency key (what ``drip_get_batch`` reports)."""

    idempotency_key: str
    status: Status
    error_code: str | None = None


@dataclass(frozen=True)
class OutboxCounts:
    pending: int = 0
    dead: int = 0
    sent: int = 0


@dataclass(frozen=True)
class OutboxRow:
    """One stored request of the shared (PostgreSQL) outbox."""

    id: int
    scope: str
    tenant: str
    endpoint: str
    method: str
    path: str
    body: str
    idempotency_key: str
    status: Status
    attempts: int
    last_error_code: str | None
    last_status: int | None
    last_error: str | None

    def summary(self) -> dict[str, Any]:
        """What an operator sees: no body, which may hold metadata."""
        return {
            "id": self.id,
            "status": self.status,
            "tenant": self.tenant,
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "last_error_code": self.last_error_code,
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


class OutboxStore(Protocol):
    """The outbox as the durable sender and drainers use it (async; see `drip_mcp.api.outbox` for the rules)."""

    where: str  # for one-line log messages: the file, or the shared database

    async def put(
        self, *, scope: str, tenant: str, endpoint: str, method: str, path: str, body: bytes, idempotency_key: str
    ) -> int: ...
    async def mark_sent(self, entry_id: int, *, status: int | None = None) -> None: ...
    async def defer(self, entry_id: int, error: DripError) -> float: ...
    async def bury(self, entry_id: int, error: DripError) -> None: ...
    async def release(self, entry_id: int) -> None: ...
    async def claim(self, scope: str, *, limit: int = 20, force: bool = False) -> Sequence[OutboxRecord]: ...
    async def recover_abandoned(self) -> int: ...
    async def next_due(self, scope: str) -> float | None: ...
    async def counts(self, scope: str | None = None, *, tenant: str | None = None) -> OutboxCounts: ...
    async def with_key_prefix(self, scope: str, prefix: str, *, tenant: str | None = None) -> list[KeyedStatus]: ...
    async def prune(self) -> int: ...
    async def waiting_scopes(self) -> list[str]:
        """Scopes with pending rows (which tenants' rows wait)."""


class StateStore(LedgerStore, BudgetStore, NonceStore, SecretFileStore, TenantKeyStore, Protocol):
    """Everything a drip-mcp process keeps between calls; `outbox` is None when the outbox is a SQLite file."""

    @property
    def kind(self) -> str:
        """'sqlite' or 'postgresql'."""

    @property
    def shared(self) -> bool:
        """True when other processes (hosts) share this store."""

    @property
    def outbox(self) -> OutboxStore | None: ...

    async def schema_version(self) -> int: ...
