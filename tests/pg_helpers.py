"""A real PostgreSQL for the state-store tests: `DRIP_MCP_TEST_POSTGRES_URL`, else one started by `.ci/postgres`.

Without the variable, the session fixture starts a throwaway server with the same script CI uses (and stops
it, and only it, at the end). When that is impossible the tests fail under ``CI`` and skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = ["PG_URL_ENV", "fresh_database", "postgres_server"]

PG_URL_ENV = "DRIP_MCP_TEST_POSTGRES_URL"
SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres"
# Read once at import: the autouse fixture clears DRIP_* variables for every test.
_GIVEN_URL = os.environ.get(PG_URL_ENV)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may create databases beside."""
    if _GIVEN_URL:
        yield _GIVEN_URL
        return
    # Directly under the temp root: as root, the server runs as `postgres`, which must reach the directory.
    directory = Path(tempfile.mkdtemp(prefix="drip-mcp-pg-"))
    try:
        started = subprocess.run(
            [str(SCRIPT), "start", str(directory)], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        message = f"cannot start PostgreSQL with {SCRIPT}: {exc} {detail}".strip()
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = started.stdout.strip().rpartition("=")[2]
    try:
        yield url
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, timeout=60, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url` (dropped afterwards); yields its URL."""
    name = f"drip_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
