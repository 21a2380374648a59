"""Private files and directories for local state.

Everything drip-mcp keeps on disk (the sandbox database, the outbox, webhook
secret files) lives in one state directory, resolved by
`drip_mcp.settings.resolve_state_dir`. Directories are created readable only by
the current user.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ensure_private_dir"]


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the current user; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
