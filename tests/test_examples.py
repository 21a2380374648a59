"""The agent-framework examples run offline against `drip-mcp --sandbox` and make real tool calls."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CASES = {
    "langchain_agent.py": ("langchain_core", "langchain:"),
    "pydantic_ai_agent.py": ("pydantic_ai", "pydantic-ai:"),
    "openai_agents_agent.py": ("agents", "openai-agents:"),
}
CALLS = ("drip_get_or_create_customer", "drip_track_usage", "drip_record_run", "drip_get_balance")


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_offline_and_calls_the_tools(script: str, tmp_path: Path) -> None:
    module, banner = CASES[script]
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing: CI installs the examples extra (.[dev] includes it)")
        pytest.skip(f"needs the examples extra: pip install -e '.[test,examples]' ({module} is missing)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path / "unused")  # each example makes its own temporary state dir
    env["OPENAI_API_KEY"] = "sk-not-used-offline"  # nothing may reach a model provider
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(banner)
    assert "tools from drip-mcp --sandbox" in lines[0]
    called = [line.split()[1] for line in lines if line.startswith("> ")]
    assert called == list(CALLS)
    assert '"status":"recorded"' in done.stdout  # usage and the run were recorded
    assert lines[-1].startswith("Done: customer ")
    assert lines[-1].endswith(" has 100.000000 USDC.")  # sandbox customers start with 100 USDC
    assert not (tmp_path / "unused").exists()
