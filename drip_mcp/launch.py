"""How this drip-mcp was started, as a command a user can paste (banner, ``drip-mcp demo``)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["launch_command"]

CONSOLE_SCRIPT = "drip-mcp"


def launch_command(argv0: str | None = None, executable: str | None = None) -> str:
    """The command that starts this drip-mcp again, as installed.

    Started through the ``drip-mcp`` console script (pip, pipx, ``uv tool install``): the
    script's resolved absolute path. Otherwise (``python -m drip_mcp``, tests): ``<python> -m
    drip_mcp`` with this interpreter's absolute path, so it works outside an activated venv.
    `argv0` and `executable` default to ``sys.argv[0]`` and ``sys.executable``.
    """
    script = sys.argv[0] if argv0 is None else argv0
    python = sys.executable if executable is None else executable
    if Path(script).name in (CONSOLE_SCRIPT, f"{CONSOLE_SCRIPT}.exe", f"{CONSOLE_SCRIPT}-script.py"):
        found = script if Path(script).parent != Path() or Path(script).exists() else shutil.which(script)
        if found:
            return shlex.quote(str(Path(found).resolve()))
    return f"{shlex.quote(str(Path(python).absolute()))} -m drip_mcp"
