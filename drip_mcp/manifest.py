"""``tools.json``: the tool catalogue rendered from the registry, and its staleness check.

The file is generated, never edited: ``drip-mcp tools --output tools.json``
writes it and ``drip-mcp tools --check`` (run by CI and a test) fails when it no
longer matches `drip_mcp.tools.TOOLS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drip_mcp._version import __version__
from drip_mcp.tools import TOOLS

__all__ = ["DEFAULT_PATH", "check_manifest", "manifest", "render_manifest", "render_tool_table"]

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "tools.json"


def manifest() -> dict[str, Any]:
    """The catalogue as data: one entry per tool, in registry order."""
    return {
        "name": "drip-mcp",
        "version": __version__,
        "tools": [
            {
                "name": t.name,
                "title": t.title,
                "toolset": t.toolset,
                "keyType": t.scope.value,
                "description": t.description,
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True),
                "inputSchema": t.build_input_schema(),
                "outputSchema": t.build_output_schema(),
            }
            for t in TOOLS
        ],
    }


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
    rows = ["| tool | toolset | key | read-only | destructive | what it does |", "|---|---|---|---|---|---|"]
    for t in TOOLS:
        first_sentence = t.description.split(". ")[0].rstrip(".") + "."
        rows.append(
            f"| `{t.name}` | {t.toolset} | {'sk' if t.scope.value == 'secret' else 'pk'} | "
            f"{'yes' if t.read_only else 'no'} | {'yes' if t.destructive else 'no'} | {first_sentence} |"
        )
    return "\n".join(rows) + "\n"
