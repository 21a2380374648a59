"""Where drip-mcp keeps local state.

Everything the server keeps on disk (the sandbox database, the outbox, webhook
secret files) lives in one state directory, resolved in this order:

1. ``DRIP_MCP_STATE_DIR``
2. ``$XDG_STATE_HOME/drip-mcp``
3. ``~/.local/state/drip-mcp``

The directory is created with mode 0700 on first use. Each file also has its
own override (``--sandbox-db``, ``--outbox``), resolved by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ensure_private_dir", "state_dir"]

APP_DIR_NAME = "drip-mcp"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the state directory (not created; see `ensure_private_dir`)."""
    env = os.environ if environ is None else environ
    if explicit := env.get("DRIP_MCP_STATE_DIR"):
        return Path(explicit).expanduser()
    if xdg := env.get("XDG_STATE_HOME"):
        return Path(xdg).expanduser() / APP_DIR_NAME
    return Path.home() / ".local" / "state" / APP_DIR_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the current user; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
