from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from drip_mcp.sandbox.serve import serve
from drip_mcp.settings import Settings


def test_non_loopback_host_needs_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        serve(host="0.0.0.0", port=0, db_path=tmp_path / "x.db")  # noqa: S104


def test_default_db_path_prefers_env_then_state_dir(tmp_path: Path) -> None:
    state = {"DRIP_MCP_STATE_DIR": str(tmp_path / "state")}
    assert Settings.load(state, api_key="", require_key=False).sandbox_db_path == tmp_path / "state" / "sandbox.db"
    explicit = {**state, "DRIP_SANDBOX_DB": str(tmp_path / "explicit.db")}
    assert Settings.load(explicit, api_key="", require_key=False).sandbox_db_path == tmp_path / "explicit.db"


def test_cli_sandbox_serves_health_and_creates_the_db_directory(tmp_path: Path) -> None:
    db = tmp_path / "new" / "dir" / "sandbox.db"
    env = {**os.environ, "DRIP_MCP_STATE_DIR": str(tmp_path / "state")}
    cmd = [sys.executable, "-m", "drip_mcp", "sandbox", "--port", "0", "--db", str(db)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the one "listening on" line, printed once the socket is bound
        assert "listening on http://127.0.0.1:" in line, line
        base = line.split("listening on ", 1)[1].split()[0]
        health = httpx2.get(base.removesuffix("/v1") + "/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        assert db.is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
