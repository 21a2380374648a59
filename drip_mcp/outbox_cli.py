"""``drip-mcp outbox status|list|flush|retry-dead|salvage``: inspect, drain and repair the durable outbox.

The outbox file is resolved like the server's (`Settings.outbox`: ``--outbox``,
then ``DRIP_MCP_OUTBOX``, then the state directory); with ``--state-url`` (or
``DRIP_MCP_STATE_URL``) the fleet's shared PostgreSQL outbox is used instead.
``flush`` opens the Drip side exactly as the server does (`drip_mcp.runtime.open_client`).

Rows belong to tenants (the key fingerprint in their scope, or the tenant column of
the shared outbox): ``status --by-tenant`` counts per tenant and names the tenants
whose rows wait (without ``DRIP_MCP_STATE_KEY`` a per-request-key tenant's rows wait
until it connects again); ``list --tenant FP`` shows one tenant's rows.

Every action on the SQLite file but ``salvage`` opens it as the server does, which
checks it (``PRAGMA quick_check``): a damaged file is one line naming it and exit 2.
``salvage`` copies the readable rows of a damaged file to a fresh one and says how
many were recovered and lost.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from drip_mcp.api.durable import Drainer
from drip_mcp.api.outbox import Outbox
from drip_mcp.api.salvage import salvage
from drip_mcp.runtime import open_client
from drip_mcp.settings import Settings
from drip_mcp.state import open_state
from drip_mcp.state.base import Status

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """``drip-mcp outbox status|list|flush|retry-dead|salvage``."""
    parser = subparsers.add_parser("outbox", help="inspect and drain the durable outbox")
    parser.add_argument("--outbox", type=Path, help="outbox SQLite file (env DRIP_MCP_OUTBOX)")
    parser.add_argument("--state-url", help="the fleet's shared outbox, postgresql://... (env DRIP_MCP_STATE_URL)")
    actions = parser.add_subparsers(dest="outbox_command", required=True)
    status = actions.add_parser("status", help="counts of pending, dead and sent rows")
    status.add_argument("--by-tenant", action="store_true", help="counts per tenant; names the waiting tenants")
    listing = actions.add_parser("list", help="recent rows, newest first")
    listing.add_argument("--tenant", help="only this tenant's rows (a key fingerprint or sub:<subject>)")
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
    settings = Settings.load(api_key="", require_key=False, outbox=args.outbox, state_url=args.state_url)
    if settings.state_url:
        return anyio.run(_run_shared, args, settings)
    path = settings.outbox  # no key needed
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
            line: dict[str, Any] = {"path": str(path), "pending": counts.pending, "dead": counts.dead}
            line["sent"] = counts.sent
            if args.by_tenant:
                line.update(_by_tenant((_tenant_of_scope(e.scope), e.status) for e in outbox.entries(limit=10**9)))
            print(json.dumps(line))
        elif command == "list":
            status: Status | None = "dead" if args.dead else "pending" if args.pending else None
            entries = outbox.entries(status=status, limit=args.limit if args.tenant is None else 10**9)
            shown = [e for e in entries if args.tenant is None or _tenant_of_scope(e.scope) == args.tenant]
            for entry in shown[: args.limit]:
                print(json.dumps({**entry.summary(), "tenant": _tenant_of_scope(entry.scope)}))
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


def _tenant_of_scope(scope: str) -> str:
    """A SQLite row's tenant: the key fingerprint its scope ends with."""
    return scope.rpartition("|")[2]


def _by_tenant(rows: Any) -> dict[str, Any]:
    """``tenants`` (counts per tenant) and ``waiting_tenants`` (those with pending rows) from (tenant, status)."""
    tenants: dict[str, dict[str, int]] = {}
    for tenant, status in rows:
        counts = tenants.setdefault(tenant, {"pending": 0, "dead": 0, "sent": 0})
        counts[status] += 1
    return {"tenants": tenants, "waiting_tenants": sorted(t for t, c in tenants.items() if c["pending"])}


async def _run_shared(args: argparse.Namespace, settings: Settings) -> int:
    """``status``, ``list`` and ``retry-dead`` on the fleet's PostgreSQL outbox."""
    from drip_mcp.state.postgres import PostgresOutbox  # psycopg only with a state URL

    async with open_state(settings) as store:
        outbox = store.outbox
        assert isinstance(outbox, PostgresOutbox)
        command: str = args.outbox_command
        if command == "status":
            counts = await outbox.counts()
            line: dict[str, Any] = {"store": "postgresql", "pending": counts.pending, "dead": counts.dead}
            line["sent"] = counts.sent
            if args.by_tenant:
                line.update(_by_tenant((r.tenant, r.status) for r in await outbox.entries(limit=10**9)))
            print(json.dumps(line))
        elif command == "list":
            status = "dead" if args.dead else "pending" if args.pending else None
            for row in await outbox.entries(status=status, tenant=args.tenant, limit=args.limit):
                print(json.dumps(row.summary()))
        elif command == "retry-dead":
            print(f"{await outbox.retry_dead()} dead letter(s) moved back to pending")
    return 0


async def _flush(args: argparse.Namespace) -> int:
    settings = Settings.load(
        sandbox=args.sandbox,
        sandbox_db=args.sandbox_db,
        base_url=args.base_url,
        outbox=args.outbox,
        state_url=args.state_url,
    )
    async with open_state(settings) as store, open_client(settings, drain=False, store=store) as client:
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
