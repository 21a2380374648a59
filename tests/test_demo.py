"""``drip-mcp demo`` runs a whole agent session against a throwaway sandbox."""

from __future__ import annotations

import io

from drip_mcp.demo import run_demo


def test_demo_runs_every_step_without_an_error_and_shows_the_exact_balance() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    steps = [line.split()[1] for line in text.splitlines() if line.startswith("> ")]
    assert steps[:3] == ["drip_ping", "drip_list_meters", "drip_create_customer"]
    assert steps[-1] == "drip_session_summary"
    assert "ERROR" not in text
    assert '"available_usdc":"99.997000"' in text
    assert '"status":"preview"' in text
    assert '"status":"charged"' in text
