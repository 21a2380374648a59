"""Generated files: ``tools.json`` and the README's tool table, rendered from the registry, and their check.

Both are generated, never edited: ``drip-mcp tools --output tools.json --readme README.md``
writes them and ``drip-mcp tools --check`` (run by CI, pre-commit and a test)
fails when either no longer matches the registry (`drip_mcp.tools`). In a source
checkout the files are the repository's; from an installed wheel the check
reads the ``tools.json`` shipped inside the package (there is no README there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drip_mcp._version import __version__
from drip_mcp.tools import CATALOGUE_TOOLS, ToolSpec, all_tools, module_of

__all__ = [
    "DEFAULT_PATH",
    "check_manifest",
    "check_readme",
    "manifest",
    "render_manifest",
    "render_tool_table",
    "write_readme_table",
]

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent / "tools.json"
# A source checkout's tools.json, else the copy the wheel ships inside the package.
DEFAULT_PATH = _CHECKOUT if _CHECKOUT.exists() else _PACKAGE / "tools.json"
DEFAULT_README = _PACKAGE.parent / "README.md"
TABLE_START, TABLE_END = "<!-- tool-table:start -->\n", "<!-- tool-table:end -->"


def manifest() -> dict[str, Any]:
    """The catalogue as data: one entry per tool, in registry order.

    ``module`` (the module that declares an operation) and ``movesMoney`` let the server list the
    operations at start-up without importing them (`drip_mcp.tools.listing`).
    """
    return {
        "name": "drip-mcp",
        "version": __version__,
        "tools": [
            {
                "name": t.name,
                "title": t.title,
                "toolset": t.toolset,
                "keyType": t.scope.value,
                "surfaces": _surfaces(t),
                "movesMoney": t.moves_money,
                **({} if t in CATALOGUE_TOOLS else {"module": module_of(t.name)}),
                "description": t.description,
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True),
                "inputSchema": t.build_input_schema(),
                "outputSchema": t.build_output_schema(),
            }
            for t in all_tools()
        ],
    }


def _surfaces(spec: ToolSpec[Any, Any]) -> list[str]:
    """Where `spec` is listed: every operation on "full"; the everyday ones and the two catalogue tools
    (which find and call the rest) on "core"."""
    if spec in CATALOGUE_TOOLS:
        return ["core"]
    return ["core", "full"] if spec.core else ["full"]


def render_manifest() -> str:
    return json.dumps(manifest(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def check_manifest(path: Path | None = None) -> str | None:
    """None when `path` (default: the repository's tools.json) is current, else what is wrong."""
    target = path or DEFAULT_PATH
    if not target.exists():
        return f"{target} is missing; run `drip-mcp tools --output {target.name}`"
    if target.read_text(encoding="utf-8") != render_manifest():
        return f"{target} is stale; run `drip-mcp tools --output {target.name}` and commit it"
    return None


def render_tool_table() -> str:
    """The README's tool table (Markdown), checked against the registry by a test."""
    rows = [
        "| tool | toolset | key | core | read-only | destructive | what it does |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in all_tools():
        first_sentence = t.description.split(". ")[0].rstrip(".") + "."
        rows.append(
            f"| `{t.name}` | {t.toolset} | {'sk' if t.scope.value == 'secret' else 'pk'} | "
            f"{'yes' if 'core' in _surfaces(t) else ''} | "
            f"{'yes' if t.read_only else 'no'} | {'yes' if t.destructive else 'no'} | {first_sentence} |"
        )
    return "\n".join(rows) + "\n"


def _split_readme(text: str) -> tuple[str, str, str] | None:
    start = text.find(TABLE_START)
    end = text.find(TABLE_END, start)
    if start < 0 or end < 0:
        return None
    return text[: start + len(TABLE_START)], text[start + len(TABLE_START) : end], text[end:]


def write_readme_table(path: Path) -> None:
    """Replace the table between the README's ``tool-table`` markers with `render_tool_table`."""
    parts = _split_readme(path.read_text(encoding="utf-8"))
    if parts is None:
        raise ValueError(f"{path} has no {TABLE_START.strip()} ... {TABLE_END} markers")
    head, _, tail = parts
    path.write_text(head + render_tool_table() + tail, encoding="utf-8")


def check_readme(path: Path | None = None) -> str | None:
    """None when the README's tool table is current (or there is no README: an installed wheel)."""
    target = path or DEFAULT_README
    if not target.exists():
        return None if path is None else f"{target} is missing"
    parts = _split_readme(target.read_text(encoding="utf-8"))
    if parts is None or parts[1] != render_tool_table():
        return f"{target}'s tool table is stale; run `drip-mcp tools --readme {target.name}` and commit it"
    return None
