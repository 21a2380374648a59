"""bench/fleet.py end to end in its smallest mode: real stub, SDK floor and drip-mcp processes over loopback,
two of them on a real PostgreSQL. Only the shape of the results is checked (every scenario measured, every
throughput positive, no failed call); timing targets belong to the benchmark's own report (bench/FLEET.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HTTP_SCENARIOS = ("A floor", "B drip-mcp", "C drip-mcp --workers 2", "D drip-mcp 50 tenants")
WRITE_SCENARIOS = ("E1 SQLite, 1 process", "E2 PostgreSQL, 2 processes")


def test_the_fleet_bench_measures_every_scenario_with_positive_throughput(tmp_path: Path, postgres_url: str) -> None:
    out = tmp_path / "fleet.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    done = subprocess.run(
        [sys.executable, "bench/fleet.py", "--smoke", "--no-write", "--json", str(out), "--state-url", postgres_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    samples = json.loads(out.read_text())["samples"]

    expected = [f"{name}|drip_track_usage|{n}" for name in HTTP_SCENARIOS for n in (1, 8)]
    expected += [f"{name}|{tool}|8" for name in WRITE_SCENARIOS for tool in ("drip_track_usage", "drip_charge")]
    assert sorted(samples) == sorted(expected)
    for key, runs in samples.items():
        assert runs, key
        for run in runs:
            assert run["calls"] > 0, key
            assert run["calls_per_s"] > 0, key
            assert run["p50_ms"] > 0, key
    for tool in ("drip_track_usage", "drip_charge"):
        for run in samples[f"E2 PostgreSQL, 2 processes|{tool}|8"]:
            assert run["pg_xacts"] > 0  # the writes went through PostgreSQL
    assert "to unknown routes" in done.stdout
    assert " 0 to unknown routes" in done.stdout  # the stub answered every request drip-mcp made
