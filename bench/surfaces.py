"""What ``tools/list`` costs an agent's context on each surface, per key type (issue 13).

    python bench/surfaces.py        # a Markdown table on stdout

Counted as the README and the budget test count it: ``json.dumps`` (default separators) of the
result's ``tools`` array, as an in-process MCP client receives it. No network; a throwaway state dir.
"""

from __future__ import annotations

import json
import tempfile

import anyio
from mcp import Client

from drip_mcp.api.client import DripClient
from drip_mcp.server import build_server
from drip_mcp.settings import Settings

KEYS = {"pk_": "pk_test_bench_surfaces", "sk_": "sk_test_bench_surfaces"}
BUDGET = 24_000  # characters, the default surface with a pk_ key


async def sizes() -> list[tuple[str, str, int, int]]:
    rows = []
    with tempfile.TemporaryDirectory() as state:
        for label, key in KEYS.items():
            for surface in ("core", "full"):
                settings = Settings.load({"DRIP_MCP_STATE_DIR": state}, api_key=key, surface=surface)
                assert settings.api_key is not None
                async with Client(build_server(settings, DripClient(settings.api_key))) as client:
                    tools = (await client.list_tools()).tools
                listed = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools]
                rows.append((surface, label, len(listed), len(json.dumps(listed))))
    return rows


def main() -> None:
    print("| surface | key | tools | characters | ~tokens (chars/4) |")
    print("|---|---|---|---|---|")
    for surface, label, count, chars in anyio.run(sizes):
        mark = f" (budget {BUDGET:,})" if (surface, label) == ("core", "pk_") else ""
        print(f"| {surface} | {label} | {count} | {chars:,}{mark} | {chars // 4:,} |")


if __name__ == "__main__":
    main()
