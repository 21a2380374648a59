"""``tools.json`` is generated from the registry and checked for staleness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drip_mcp.cli import main
from drip_mcp.manifest import DEFAULT_PATH, check_manifest, check_readme, manifest, render_manifest, render_tool_table
from drip_mcp.tools import TOOLS, TOOLS_BY_NAME

REPO_MANIFEST = Path(__file__).resolve().parent.parent / "tools.json"


def test_default_path_is_the_repository_tools_json() -> None:
    assert DEFAULT_PATH == REPO_MANIFEST


def test_repository_tools_json_matches_the_registry() -> None:
    assert check_manifest() is None
    assert REPO_MANIFEST.read_text(encoding="utf-8") == render_manifest()


def test_cli_check_passes_on_the_repository_tools_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--check"]) == 0
    assert capsys.readouterr().err == ""


def test_manifest_lists_every_tool_with_its_scope_and_schemas() -> None:
    data = json.loads(render_manifest())
    assert data == manifest()
    assert [t["name"] for t in data["tools"]] == list(TOOLS_BY_NAME)
    for entry, spec in zip(data["tools"], TOOLS, strict=True):
        assert entry["keyType"] == spec.scope.value
        assert entry["toolset"] == spec.toolset
        assert entry["inputSchema"] == spec.input_schema
        assert entry["outputSchema"] == spec.output_schema
        assert set(entry["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


def test_a_stale_copy_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "tools.json"
    data = manifest()
    data["tools"] = data["tools"][:-1]
    stale.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    problem = check_manifest(stale)
    assert problem is not None
    assert str(stale) in problem


def test_a_missing_copy_is_reported(tmp_path: Path) -> None:
    problem = check_manifest(tmp_path / "absent.json")
    assert problem is not None
    assert "missing" in problem


def test_cli_check_fails_on_a_stale_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "tools.json"
    stale.write_text(render_manifest().replace("drip_ping", "drip_pong"), encoding="utf-8")
    assert main(["tools", "--check", "--output", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err


def test_cli_output_writes_a_current_manifest(tmp_path: Path) -> None:
    target = tmp_path / "tools.json"
    assert main(["tools", "--output", str(target)]) == 0
    assert check_manifest(target) is None
    assert main(["tools", "--check", "--output", str(target)]) == 0


def test_cli_prints_the_manifest_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools"]) == 0
    assert capsys.readouterr().out == render_manifest()


def test_cli_readme_rewrites_a_stale_tool_table_and_check_then_passes(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- tool-table:start -->\n| old |\n<!-- tool-table:end -->\n\nafter\n", encoding="utf-8")
    assert check_readme(readme) is not None
    assert main(["tools", "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert render_tool_table() in text
    assert text.startswith("# x\n")
    assert text.endswith("\nafter\n")
    assert check_readme(readme) is None


def test_cli_check_fails_on_a_stale_readme_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- tool-table:start -->\n| old |\n<!-- tool-table:end -->\n", encoding="utf-8")
    assert main(["tools", "--check", "--readme", str(readme)]) == 1
    assert "tool table is stale" in capsys.readouterr().err
