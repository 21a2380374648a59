"""Every config we ship points at a command that exists and starts this server.

`examples/*.json` (Claude Desktop / Cursor `mcpServers`), `server.json` (MCP registry) and `manifest.json`
(MCP Bundle). No bare `python`/`python3 -m drip_mcp`: Debian has no `python`, and `python3 -m drip_mcp`
fails from any shell or client outside the venv. The absolute-path form is checked against this venv's
`drip-mcp`; `uvx` forms are checked for shape.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from drip_mcp._version import __version__
from drip_mcp.cli import build_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent
PLACEHOLDER = "/ABSOLUTE/PATH/TO/drip-mcp/.venv/bin/drip-mcp"
REPO_URL = "https://github.com/drip-mcp/drip-mcp"
KEY_PLACEHOLDER = re.compile(r"^(pk|sk)_(live|test)_[A-Za-z0-9_]{8,}$")
EXAMPLE_CONFIGS = sorted((REPO / "examples").glob("*.json"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def venv_drip_mcp() -> Path:
    """The `drip-mcp` console script of the Python running the tests (its venv)."""
    found = shutil.which("drip-mcp", path=str(Path(sys.executable).parent))
    assert found, f"no drip-mcp next to {sys.executable}: install the package into this venv"
    return Path(found)


def entries() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, entry)
        for path in EXAMPLE_CONFIGS
        for name, entry in json.loads(path.read_text(encoding="utf-8"))["mcpServers"].items()
    ]


def resolve(entry: dict[str, Any]) -> list[str]:
    """The argv a client runs for an mcpServers entry, with our placeholder resolved to this venv."""
    command = entry["command"]
    assert command not in ("python", "python3", "py"), "bare python: absent on Debian, wrong env elsewhere"
    if command == PLACEHOLDER:
        return [str(venv_drip_mcp()), *entry.get("args", [])]
    assert command == "uvx", f"use {PLACEHOLDER} or uvx, not {command!r}"
    args = entry["args"]
    assert args[0] == "--from"
    assert args[1] in (f"git+{REPO_URL}", ".") or Path(args[1]).is_absolute(), args[1]
    assert args[2] == "drip-mcp"
    return ["drip-mcp", *args[3:]]


def assert_flags_parse(argv: list[str]) -> None:
    """drip-mcp's own parser accepts the flags (a typo would make the client's server exit 2)."""
    args = build_parser().parse_args(["serve", *argv[1:]])
    assert args.command == "serve"


def test_there_are_example_configs() -> None:
    assert {p.name for p in EXAMPLE_CONFIGS} >= {"claude_config.json", "cursor_mcp.json"}
    assert entries()


@pytest.mark.parametrize(("config", "name", "entry"), entries(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_entry_resolves(config: str, name: str, entry: dict[str, Any]) -> None:
    argv = resolve(entry)
    if argv[0] != "drip-mcp":
        assert os.access(argv[0], os.X_OK), argv[0]
    assert_flags_parse(argv)
    key = entry.get("env", {}).get("DRIP_API_KEY")
    if "--sandbox" not in argv:
        assert key, f"{config}:{name} needs a DRIP_API_KEY placeholder"
        assert KEY_PLACEHOLDER.match(key), key
    assert set(entry) <= {"command", "args", "env"}


def test_readme_explains_the_placeholder_and_has_no_bare_python() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert PLACEHOLDER in readme
    for name in ("claude_config.json", "cursor_mcp.json"):
        assert f"examples/{name}" in readme
    for line in readme.splitlines():
        if line.startswith("claude mcp add"):
            assert "python" not in line, line
            assert "drip-mcp" in line.split(" -- ", 1)[1], line


def test_server_json_is_valid_for_the_registry() -> None:
    server = json.loads((REPO / "server.json").read_text(encoding="utf-8"))
    schema = json.loads((REPO / "tests" / "schemas" / "server.schema.json").read_text(encoding="utf-8"))
    assert server["$schema"] == schema["$id"]
    jsonschema.validate(server, schema, cls=jsonschema.Draft7Validator, format_checker=jsonschema.FormatChecker())
    assert server["version"] == __version__
    assert server["repository"]["url"] == REPO_URL
    (package,) = server["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == PYPROJECT["project"]["name"]
    assert package["version"] == __version__
    # uvx <identifier> runs the console script of the same name.
    assert package["runtimeHint"] == "uvx"
    assert package["identifier"] in PYPROJECT["project"]["scripts"]
    assert package["transport"] == {"type": "stdio"}
    assert "DRIP_API_KEY" in {v["name"] for v in package["environmentVariables"]}
    # PyPI ownership check of the registry: the README (the PyPI description) names the server.
    assert f"mcp-name: {server['name']}" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_vendored_schema_is_the_registrys() -> None:
    schema = json.loads((REPO / "tests" / "schemas" / "server.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$id"].startswith("https://static.modelcontextprotocol.io/schemas/")
    bad = {"name": "no-slash", "description": "x", "version": "1"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft7Validator)


def test_manifest_json_starts_this_package() -> None:
    manifest = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == __version__
    server = manifest["server"]
    assert (REPO / server["entry_point"]).is_file()
    config = server["mcp_config"]
    assert server["type"] == "uv"
    assert config["command"] == "uv"
    assert config["args"] == ["run", "--directory", "${__dirname}", "drip-mcp"]
    assert "drip-mcp" in PYPROJECT["project"]["scripts"]
    for value in config["env"].values():
        name = re.fullmatch(r"\$\{user_config\.(\w+)\}", value)
        assert name, value
        assert name.group(1) in manifest["user_config"], value
    assert manifest["user_config"]["drip_api_key"]["sensitive"] is True


def test_project_urls_and_typed_marker() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert set(urls) == {"Homepage", "Repository", "Issues", "Changelog"}
    assert all(u.startswith(REPO_URL) for u in urls.values())
    assert (REPO / "drip_mcp" / "py.typed").is_file()
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["drip_mcp"]  # ships py.typed


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_sandbox_config_starts_the_server_and_answers_initialize(tmp_path: Path) -> None:
    config = json.loads((REPO / "examples" / "claude_config.json").read_text(encoding="utf-8"))
    command, *args = resolve(config["mcpServers"]["drip-sandbox"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path / "state")
    # A client starts the server from its own working directory, not from this checkout.
    params = StdioServerParameters(command=command, args=args, env=env, cwd=str(tmp_path))
    with anyio.fail_after(30):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            tools = (await session.list_tools()).tools
    assert init.server_info.name == "drip-mcp"
    assert init.server_info.version == __version__
    assert "drip_track_usage" in {t.name for t in tools}
    assert (tmp_path / "state" / "sandbox.db").exists()


@pytest.mark.slow
def test_mcpb_manifest_validates_and_packs() -> None:
    """`.ci/mcpb-check`: mcpb validate + pack with the pinned CLI (it runs `npm ci` in tests/node/mcpb if needed)."""
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("npm is needed for the MCP Bundle check")
        pytest.skip("npm is not installed")
    done = subprocess.run([str(REPO / ".ci" / "mcpb-check")], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mcpb-check: PASS" in done.stdout
