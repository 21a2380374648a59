"""`open_state(settings)`: the state store the settings name (PostgreSQL with a state URL, else SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drip_mcp.settings import Settings
from drip_mcp.state.base import StateStore
from drip_mcp.state.sqlite import SqliteState

__all__ = ["STATE_FILE", "open_state"]

STATE_FILE = "state.db"


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[StateStore]:
    """``--state-url`` (PostgreSQL, shared by a fleet), else ``<state dir>/state.db`` (SQLite), migrated."""
    if settings.state_url:
        from drip_mcp.state.postgres import open_postgres_state  # psycopg only when asked for (start-up time)

        async with open_postgres_state(settings.state_url) as shared:
            yield shared
        return
    store = SqliteState(settings.state_dir / STATE_FILE)
    try:
        yield store
    finally:
        store.close()
