"""The registry lists operations from ``tools.json`` and imports a toolset module only when it is called.

A fresh interpreter starts the server and lists its tools (no toolset module imported), then calls
``drip_track_usage`` (only ``drip_mcp.tools.usage`` imported); every operation read from the manifest
says what its `ToolSpec` says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drip_mcp.tools import CATALOGUE_TOOLS, MODULES, all_operations, operations, spec_of
from drip_mcp.tools.listing import ListedOperation

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, sys, anyio
from mcp import Client
from drip_mcp.api.client import DripClient
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.tools import MODULES

def loaded():
    return sorted(m for m in MODULES if m in sys.modules)

async def main():
    db = sys.argv[1] + "/sandbox.db"
    settings = Settings.load({"DRIP_MCP_STATE_DIR": sys.argv[1] + "/state"}, api_key="pk_test_lazy0000000000000",
                             sandbox=True, sandbox_db=db)
    seen = {}
    async with Sandbox(SandboxConfig(db_path=db)) as sandbox:
        async with DripClient(settings.api_key, base_url="http://sandbox.local/v1",
                              transport=sandbox.transport()) as client:
            server = build_server(settings, client)
            async with Client(server) as mcp:
                listed = await mcp.list_tools()
                seen["listed"] = len(listed.tools)
                seen["after_list"] = loaded()
                customer = await mcp.call_tool("drip_get_or_create_customer", {"external_customer_id": "lazy-1"})
                customer_id = customer.structured_content["customer"]["id"]
                seen["after_customer"] = loaded()
                result = await mcp.call_tool(
                    "drip_track_usage", {"customer_id": customer_id, "meter": "api_calls", "quantity": 1}
                )
                seen["usage_error"] = result.is_error
                seen["after_usage"] = loaded()
    print(json.dumps(seen))

anyio.run(main)
"""


@pytest.mark.slow
def test_listing_imports_no_toolset_module_and_a_call_imports_only_its_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert seen["listed"] > 2
    assert seen["after_list"] == []
    assert seen["after_customer"] == ["drip_mcp.tools.customers"]
    assert seen["usage_error"] is False
    assert seen["after_usage"] == ["drip_mcp.tools.customers", "drip_mcp.tools.usage"]


def test_every_operation_is_listed_from_the_manifest_as_its_spec_declares_it() -> None:
    listed = operations()
    declared = all_operations()
    assert list(listed) == [t.name for t in declared]
    for spec in declared:
        entry = listed[spec.name]
        assert isinstance(entry, ListedOperation), spec.name
        assert spec_of(spec.name) is spec
        assert entry.module in MODULES
        for attribute in (
            "name",
            "title",
            "description",
            "toolset",
            "scope",
            "read_only",
            "destructive",
            "idempotent",
            "moves_money",
            "core",
            "input_schema",
            "annotations",
            "mcp_tool",
        ):
            assert getattr(entry, attribute) == getattr(spec, attribute), (spec.name, attribute)


def test_the_catalogue_tools_are_their_own_specs() -> None:
    for tool in CATALOGUE_TOOLS:
        assert spec_of(tool.name) is tool
        assert tool.name not in operations()
