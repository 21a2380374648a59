from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

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
    monkeypatch.setenv("DRIP_MCP_STATE_DIR", str(state))
    for name in (
        "DRIP_API_KEY",
        "DRIP_API_URL",
        "DRIP_BASE_URL",
        "DRIP_TIMEOUT",
        "DRIP_MAX_RETRIES",
        "DRIP_TOOLSETS",
        "DRIP_READ_ONLY",
        "DRIP_SANDBOX_DB",
        "DRIP_MCP_OUTBOX",
        "DRIP_MCP_AUTH_TOKEN",
        "DRIP_MAX_CHARGE_USDC",
        "DRIP_SESSION_BUDGET_USDC",
    ):
        monkeypatch.delenv(name, raising=False)
    return state
