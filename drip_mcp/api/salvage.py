"""Salvage a damaged outbox file: copy every readable row into a fresh one (``drip-mcp outbox salvage``).

A damaged SQLite page can hide rows from a plain scan; the table's indexes often
survive, so the ids they list are read one by one, and what cannot be read is
counted as lost (None when not even the indexes can be read). Rows keep their
ids, leases are cleared, and the fresh file gets its ``.recorded`` marker.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drip_mcp.api.outbox import _MARKER_TEXT, Outbox, OutboxEntry, recorded_marker
from drip_mcp.paths import PRIVATE_FILE_MODE, SQLITE_COMPANIONS

__all__ = ["SalvageReport", "salvage"]


@dataclass(frozen=True)
class SalvageReport:
    """What `salvage` did: rows copied, rows known to exist but unreadable (None: unknown)."""

    source: Path
    output: Path
    recovered: int
    lost: int | None
    damaged_copy: Path | None = None


_COLUMNS = tuple(OutboxEntry.__dataclass_fields__)


def _known_ids(conn: sqlite3.Connection) -> list[int] | None:
    """The row ids the table's indexes list (they survive damage to the table's own pages), if readable."""
    for index in ("outbox_due", "sqlite_autoindex_outbox_1"):
        try:
            return sorted(int(r[0]) for r in conn.execute(f"SELECT id FROM outbox INDEXED BY {index}"))  # noqa: S608 - fixed names
        except sqlite3.DatabaseError:
            continue
    return None


def _highest_id(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    except sqlite3.DatabaseError:
        return 0
    return int(row[0]) if row and isinstance(row[0], int) else 0


def _readable_rows(conn: sqlite3.Connection) -> tuple[dict[int, dict[str, Any]], int | None]:
    """Every row that can be read, by id; and how many more the indexes list (None: unknown)."""
    rows: dict[int, dict[str, Any]] = {}
    known: list[int] | None = None
    highest = 0
    damaged = False
    cursor = 0
    while True:
        try:
            for found in conn.execute("SELECT * FROM outbox WHERE id > ? ORDER BY id", (cursor,)):
                rows[int(found["id"])] = dict(found)
                cursor = int(found["id"])
            break
        except sqlite3.DatabaseError:
            if not damaged:
                damaged = True
                known = _known_ids(conn)
                highest = max(known) if known else _highest_id(conn)
            # The row after `cursor` cannot be read by a scan: step past it, one id at a time.
            later = [i for i in known if i > cursor] if known is not None else []
            cursor = later[0] if later else cursor + 1
            if cursor > highest:
                break
            with suppress(sqlite3.DatabaseError):
                if (point := conn.execute("SELECT * FROM outbox WHERE id = ?", (cursor,)).fetchone()) is not None:
                    rows[cursor] = dict(point)
    if not damaged:
        return rows, 0
    return rows, None if known is None else len(set(known) - set(rows))


def _move_aside(path: Path, suffix: str) -> Path:
    for companion in SQLITE_COMPANIONS:
        side = path.with_name(path.name + companion)
        if side.exists():
            side.replace(path.with_name(path.name + suffix + companion))
    target = path.with_name(path.name + suffix)
    path.replace(target)
    return target


def salvage(source: Path, output: Path | None = None) -> SalvageReport:
    """Copy the readable rows of the (damaged) outbox at `source` into a fresh outbox file.

    With `output`, the fresh file is written there (it must not exist) and `source` is
    left as it is. Without it, `source` (and its ``-wal``/``-shm``) is moved aside to
    ``<source>.damaged-<UTC time>`` and the fresh file takes its place. Leases are
    cleared (stop every drip-mcp using the file first). Rows keep their ids.
    """
    if not source.exists():
        raise FileNotFoundError(f"no outbox at {source}")
    target = output if output is not None else source.with_name(source.name + ".salvage-tmp")
    if output is not None and output.exists():
        raise FileExistsError(f"{output} already exists; choose a new --output path")
    if output is None:  # a leftover of an interrupted salvage
        for stale in (target, *(target.with_name(target.name + c) for c in SQLITE_COMPANIONS)):
            stale.unlink(missing_ok=True)
    conn = sqlite3.connect(str(source), isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        rows, lost = _readable_rows(conn)
    finally:
        conn.close()
    recovered = 0
    skipped = 0
    marks = ", ".join("?" * len(_COLUMNS))
    with Outbox(target) as fresh, fresh._write() as write:
        for entry_id in sorted(rows):
            values = {**rows[entry_id], "lease_owner": None, "lease_until": None}
            try:
                write.execute(
                    f"INSERT INTO outbox ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - fixed names
                    tuple(values.get(column) for column in _COLUMNS),
                )
            except sqlite3.Error:
                skipped += 1  # a row whose fields are garbage
            else:
                recovered += 1
    lost = None if lost is None else lost + skipped
    damaged_copy = None
    if output is None:
        damaged_copy = _move_aside(source, time.strftime(".damaged-%Y%m%dT%H%M%SZ", time.gmtime()))
        target.replace(source)
        target = source
    if recovered:
        with suppress(FileExistsError):
            fd = os.open(recorded_marker(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(_MARKER_TEXT)
    return SalvageReport(source, target, recovered, lost, damaged_copy)
