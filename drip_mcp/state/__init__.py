"""The state store: tenant-scoped ledger, budgets, confirm nonces, secret-file ownership, tenant keys, outbox.

SQLite in the state directory by default (`SqliteState`), PostgreSQL with
``--state-url`` (`PostgresState`, shared by every process of a fleet); both
behind the `StateStore` protocol (`drip_mcp.state.base`). Who a call's tenant
is, is decided once, by `tenant_of` (`drip_mcp.state.tenancy`). The PostgreSQL
store is imported from `drip_mcp.state.postgres`, and only when a state URL asks
for it: psycopg costs ~60 ms at start-up that a stdio server should not pay.
"""

from drip_mcp.state.base import (
    BudgetExceeded,
    OutboxCounts,
    OutboxRecord,
    OutboxRow,
    OutboxStore,
    StateStore,
)
from drip_mcp.state.holder import StateSlot
from drip_mcp.state.opening import STATE_FILE, open_state
from drip_mcp.state.sealing import KeySealer
from drip_mcp.state.sqlite import SqliteState
from drip_mcp.state.tenancy import acting_as, tenant_of

__all__ = [
    "STATE_FILE",
    "BudgetExceeded",
    "KeySealer",
    "OutboxCounts",
    "OutboxRecord",
    "OutboxRow",
    "OutboxStore",
    "SqliteState",
    "StateSlot",
    "StateStore",
    "acting_as",
    "open_state",
    "tenant_of",
]
