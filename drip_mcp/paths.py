"""Private files and directories for local state.

Everything drip-mcp keeps on disk (the sandbox database, the outbox, webhook
secret files) lives in one state directory, resolved by
`drip_mcp.settings.resolve_state_dir`. That directory is 0700 and its files
0600:

* `secure_state_dir` makes the state directory so, also when it already existed
  looser (systemd's ``StateDirectory=`` creates it 0755), and refuses one that
  belongs to another user;
* `ensure_private_dir` creates any other directory drip-mcp writes in 0700 (an
  existing one, such as the directory of a ``--sandbox-db`` the user chose, is
  left as it is);
* `private_database` makes a SQLite database file, and its ``-wal``, ``-shm``
  and ``-journal`` companions, 0600 before any data lands in it. SQLite creates
  the companions lazily with the mode of the database file, so a 0600 database
  keeps them 0600 too; companions left over from an older run are tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drip_mcp.errors import ConfigurationError

__all__ = ["PRIVATE_FILE_MODE", "ensure_private_dir", "private_database", "secure_state_dir"]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the current user; return it."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def secure_state_dir(path: Path) -> Path:
    """Create the state directory 0700, or make an existing one 0700; return it.

    Raises `ConfigurationError` (one line, naming the directory) when it belongs
    to another user or is a shared sticky directory such as ``/tmp``.
    """
    ensure_private_dir(path)
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"the state directory {path} belongs to another user (uid {info.st_uid}); run drip-mcp as that user "
            "or set DRIP_MCP_STATE_DIR to a directory of your own"
        )
    if info.st_mode & stat.S_ISVTX:
        raise ConfigurationError(
            f"the state directory {path} is a shared directory (sticky bit); set DRIP_MCP_STATE_DIR to a private one"
        )
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def private_database(path: Path) -> Path:
    """Make the SQLite file at `path` (created empty if missing) and its companions 0600; return it.

    Call it before ``sqlite3.connect``: a missing file is created 0600 here, so
    no byte is ever written to a file others can read.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(companion.stat().st_mode) != PRIVATE_FILE_MODE:
                companion.chmod(PRIVATE_FILE_MODE)
        except FileNotFoundError:
            pass
    return path
