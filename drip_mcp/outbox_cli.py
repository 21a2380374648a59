"""``drip-mcp outbox status|list|flush|retry-dead|salvage``: inspect, drain and repair the durable outbox.

The outbox file is resolved like the server's (`Settings.outbox`: ``--outbox``,
then ``DRIP_MCP_OUTBOX``, then the state directory). ``flush`` opens the Drip
side exactly as the server does (`drip_mcp.runtime.open_client`).

Every action but ``salvage`` opens the file as the server does, which checks it
(``PRAGMA quick_check``): a damaged file is one line naming it and exit 2.
``salvage`` copies the readable rows of a damaged file to a fresh one and says
how many were recovered and lost.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from drip_mcp.api.durable import Drainer
from drip_mcp.api.outbox import Outbox, Status, salvage
from drip_mcp.runtime import open_client
from drip_mcp.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """``drip-mcp outbox status|list|flush|retry-dead|salvage``."""
    parser = subparsers.add_parser("outbox", help="inspect and drain the durable outbox")
    parser.add_argument("--outbox", type=Path, help="outbox SQLite file (env DRIP_MCP_OUTBOX)")
    actions = parser.add_subparsers(dest="outbox_command", required=True)
    actions.add_parser("status", help="counts of pending, dead and sent rows")
    listing = actions.add_parser("list", help="recent rows, newest first")
    listing.add_argument("--dead", action="store_true", help="dead letters only")
    listing.add_argument("--pending", action="store_true", help="pending rows only")
    listing.add_argument("--limit", type=int, default=50)
    flush = actions.add_parser("flush", help="send every pending row now (needs DRIP_API_KEY or --sandbox)")
    flush.add_argument("--sandbox", action="store_true", help="deliver to the built-in sandbox")
    flush.add_argument("--sandbox-db", type=Path, help="sandbox SQLite file (env DRIP_SANDBOX_DB)")
    flush.add_argument("--base-url", help="Drip API URL (env DRIP_API_URL)")
    actions.add_parser("retry-dead", help="move dead letters back to pending")
    rescue = actions.add_parser(
        "salvage",
        help="copy the readable rows of a damaged outbox to a fresh file (stop drip-mcp first)",
        description="Without --output, the damaged file is moved aside (<file>.damaged-<time>) and the fresh "
        "file takes its place.",
    )
    rescue.add_argument("--output", type=Path, help="write the fresh outbox here and leave the damaged file as it is")


def run(args: argparse.Namespace) -> int:
    """Run one ``outbox`` action; return the exit code."""
    command: str = args.outbox_command
    if command == "flush":
        return anyio.run(_flush, args)
    path = Settings.load(api_key="", require_key=False, outbox=args.outbox).outbox  # no key needed
    assert path is not None
    if command == "salvage":
        return _salvage(path, args.output)
    if not path.exists():
        print(f"drip-mcp: no outbox at {path}", file=sys.stderr)
        if command == "status":
            print(json.dumps({"path": str(path), "pending": 0, "dead": 0, "sent": 0}))
            return 0
        return 0 if command == "list" else 1
    with Outbox(path) as outbox:
        if command == "status":
            counts = outbox.counts()
            print(json.dumps({"path": str(path), "pending": counts.pending, "dead": counts.dead, "sent": counts.sent}))
        elif command == "list":
            status: Status | None = "dead" if args.dead else "pending" if args.pending else None
            for entry in outbox.entries(status=status, limit=args.limit):
                print(json.dumps(entry.summary()))
        elif command == "retry-dead":
            print(f"{outbox.retry_dead()} dead letter(s) moved back to pending")
    return 0


def _salvage(path: Path, output: Path | None) -> int:
    report = salvage(path, output)
    lost = "an unknown number of" if report.lost is None else str(report.lost)
    print(
        json.dumps(
            {
                "path": str(report.source),
                "output": str(report.output),
                "recovered": report.recovered,
                "lost": report.lost,
                "damaged_copy": str(report.damaged_copy) if report.damaged_copy else None,
            }
        )
    )
    moved = f"; the damaged file is now {report.damaged_copy}" if report.damaged_copy else ""
    print(f"drip-mcp: recovered {report.recovered} row(s), lost {lost}, into {report.output}{moved}", file=sys.stderr)
    return 0


async def _flush(args: argparse.Namespace) -> int:
    settings = Settings.load(
        sandbox=args.sandbox, sandbox_db=args.sandbox_db, base_url=args.base_url, outbox=args.outbox
    )
    async with open_client(settings, drain=False) as client:
        results = await Drainer(client).flush()
        for delivery in results:
            line = {**delivery.entry.summary(), "outcome": delivery.outcome}
            line.pop("status")
            if delivery.error is not None:
                line.update(last_error_code=delivery.error.code, last_status=delivery.error.status)
            print(json.dumps(line))
        sent = sum(d.outcome == "sent" for d in results)
        print(f"{sent} sent, {len(results) - sent} not sent", file=sys.stderr)
        return 0 if sent == len(results) else 1
