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
    """The first two commands work on a stock Debian/Ubuntu python3 (PEP 668): a venv, never a bare pip."""
    first_block = README.read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0]
    run, test = (line.split("  #", 1)[0].strip() for line in first_block.strip().splitlines()[:2])
    for line in (run, test):
        assert line.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e ")
        assert "python3 -m pip" not in line
    # .ci/fresh-machine runs everything before the last `&&` verbatim and then checks this exact server start.
    assert run.rsplit(" && ", 1)[1] == ".venv/bin/drip-mcp --sandbox"
    assert run == "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/drip-mcp --sandbox"
    # The test command installs what the example tests need (tests/test_examples.py) and runs from the venv.
    assert "'.[test,examples]'" in test
    assert test.endswith(" && .venv/bin/python -m pytest -q")


def test_readme_never_suggests_a_bare_python_command() -> None:
    """`python` is absent on Debian; `python3 -m drip_mcp` fails outside the venv. Commands use the venv."""
    text = README.read_text(encoding="utf-8")
    code = "\n".join(re.findall(r"```(?:bash|json|console)\n(.*?)```", text, re.S))
    assert "python3 -m drip_mcp" not in code
    assert '"command": "python' not in code
    assert "python3 -m pip install" not in code
    assert "-- python" not in code
