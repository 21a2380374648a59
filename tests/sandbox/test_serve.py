from __future__ import annotations

from pathlib import Path

import pytest

from drip_mcp.paths import state_dir
from drip_mcp.sandbox.serve import default_db_path, serve


def test_non_loopback_host_needs_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        serve(host="0.0.0.0", port=0, db_path=tmp_path / "x.db")  # noqa: S104


def test_default_db_path_prefers_env_then_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_db_path() == state_dir() / "sandbox.db"
    assert state_dir().is_dir()
    monkeypatch.setenv("DRIP_SANDBOX_DB", str(tmp_path / "explicit.db"))
    assert default_db_path() == tmp_path / "explicit.db"
