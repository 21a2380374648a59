"""The command the banner and ``drip-mcp demo`` tell the user to run is the one that started drip-mcp."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drip_mcp.launch import launch_command

REPO = Path(__file__).resolve().parent.parent


def test_started_through_the_console_script_the_command_is_its_resolved_absolute_path(tmp_path: Path) -> None:
    real = tmp_path / "tools" / "drip-mcp" / "bin" / "drip-mcp"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n", encoding="utf-8")
    link = tmp_path / "bin" / "drip-mcp"  # what `uv tool install` puts on PATH: a symlink
    link.parent.mkdir()
    link.symlink_to(real)
    assert launch_command(str(link), "/usr/bin/python3") == str(real.resolve())


def test_started_with_python_m_the_command_names_this_interpreter_absolutely() -> None:
    venv_python = "/opt/venvs/drip/bin/python"  # a symlink in real venvs: must not be resolved away
    assert launch_command("/repo/drip_mcp/__main__.py", venv_python) == f"{venv_python} -m drip_mcp"
    assert launch_command("-m", sys.executable) == f"{Path(sys.executable).absolute()} -m drip_mcp"


def _demo_next_step(command: list[str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path)
    done = subprocess.run([*command, "demo"], env=env, capture_output=True, text=True, timeout=60, check=True)
    (line,) = [line for line in done.stdout.splitlines() if "Next:" in line]
    return line.split("`")[1]


@pytest.mark.slow
def test_demo_names_the_console_script_or_the_interpreter_that_ran_it(tmp_path: Path) -> None:
    script = shutil.which("drip-mcp", path=str(Path(sys.executable).parent))
    assert script is not None, "drip-mcp is not installed beside this interpreter"
    assert _demo_next_step([script], tmp_path) == f"{Path(script).resolve()} --sandbox"
    via_python = _demo_next_step([sys.executable, "-m", "drip_mcp"], tmp_path)
    assert via_python == f"{Path(sys.executable).absolute()} -m drip_mcp --sandbox"


@pytest.mark.anyio
@pytest.mark.parametrize("surface", ["core", "full"])
async def test_banner_counts_what_tools_list_shows_and_what_the_key_can_call(surface: str) -> None:
    from mcp import Client
    from server_fixtures import state_env

    from drip_mcp.api.client import DripClient
    from drip_mcp.keys import KeyType
    from drip_mcp.server import banner, build_server
    from drip_mcp.settings import Settings

    settings = Settings.load(state_env(), api_key="pk_test_bannerkey123", surface=surface)
    assert settings.api_key is not None
    server = build_server(settings, DripClient(settings.api_key))
    async with Client(server) as client:
        listed = len((await client.list_tools()).tools)
    callable_ = len(server.tool_names(KeyType.PUBLIC))
    secret_only = len(server.tool_names(KeyType.SECRET)) - callable_
    line = banner(settings, server, "stdio")
    assert f"{surface} surface: {listed} tools listed, {callable_} operations callable" in line
    assert f"{secret_only} more operations" in line
    assert secret_only > 0
    assert (listed < callable_) == (surface == "core")
