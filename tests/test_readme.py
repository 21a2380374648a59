"""The README's promises, checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from drip_mcp.manifest import render_tool_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_tool_table_matches_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- tool-table:start -->\n(.*?)<!-- tool-table:end -->", text, re.S)
    assert match is not None
    assert match.group(1) == render_tool_table()


def test_readme_starts_with_the_run_and_test_commands() -> None:
    first_block = README.read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0]
    run, test = first_block.strip().splitlines()[:2]
    assert "python3 -m drip_mcp --sandbox" in run
    assert "python3 -m pytest -q" in test
