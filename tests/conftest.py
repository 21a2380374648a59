from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from pg_helpers import fresh_database, postgres_server

# CI explores the same examples every run, so a red CI always reproduces; local runs keep exploring anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state directory and a clean Drip environment."""
    state = tmp_path / "state"
    for name in list(os.environ):
        if name.startswith("DRIP_"):  # DRIP_* and DRIP_MCP_*: a developer's shell must not leak into a test
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIP_MCP_STATE_DIR", str(state))
    return state


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A real PostgreSQL (see `pg_helpers`): the CI's, or a throwaway one for this session."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_database(postgres_server_url) as url:
        yield url
