"""Command line: ``drip-mcp [serve] | sandbox | tools``.

`main` only parses flags, sets up stderr logging and calls a factory; every
decision about configuration lives in `drip_mcp.settings`. Configuration
errors are one line on stderr and exit code 2, never a traceback.

Each subcommand imports what it runs when it runs (so ``--help`` and ``tools``
start fast); every such import points down the layers that import-linter checks.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from drip_mcp import outbox_cli
from drip_mcp._version import __version__
from drip_mcp.errors import ConfigurationError
from drip_mcp.paths import secure_state_dir
from drip_mcp.settings import TOOLSETS

__all__ = ["main"]

EXIT_CONFIG = 2
SUBCOMMANDS = ("serve", "sandbox", "tools", "demo", "outbox", "state")


def add_webhook_host_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-webhook-host HOST`` (repeatable) and ``--allow-any-webhook-host`` to `parser`."""
    parser.add_argument(
        "--allow-webhook-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also deliver webhooks to this https host (repeatable; '*.example.com' patterns allowed)",
    )
    parser.add_argument(
        "--allow-any-webhook-host",
        action="store_true",
        help="deliver webhooks to any https host (default: loopback hosts only)",
    )


def webhook_hosts_from_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``webhook_allowed_hosts`` the flags of `add_webhook_host_arguments` ask for."""
    if getattr(args, "allow_any_webhook_host", False):
        return ("*",)
    return tuple(getattr(args, "allow_webhook_host", None) or ())


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sandbox", action="store_true", help="run against the built-in offline sandbox")
    parser.add_argument("--sandbox-db", type=Path, help="sandbox SQLite file (env DRIP_SANDBOX_DB)")
    parser.add_argument("--base-url", help="Drip API URL (env DRIP_API_URL, then DRIP_BASE_URL)")
    parser.add_argument("--timeout", type=float, help="seconds per HTTP request (env DRIP_TIMEOUT, default 30)")
    parser.add_argument("--max-retries", type=int, help="retries on 429/5xx/network errors (env DRIP_MAX_RETRIES)")
    parser.add_argument(
        "--surface",
        choices=("core", "full"),
        help="core: a few tools plus catalogue search and call (default); full: every operation as a tool "
        "(env DRIP_SURFACE)",
    )
    parser.add_argument("--toolsets", help=f"comma-separated subset of {','.join(TOOLSETS)} (env DRIP_TOOLSETS)")
    parser.add_argument("--tools", help="only these tools, comma-separated (env DRIP_TOOLS)")
    parser.add_argument("--exclude-tools", help="never these tools, comma-separated (env DRIP_EXCLUDE_TOOLS)")
    parser.add_argument(
        "--read-only", action="store_true", default=None, help="only read-only tools (env DRIP_READ_ONLY)"
    )
    parser.add_argument(
        "--metadata-policy",
        choices=("redact", "strict"),
        help="PII/secret handling in metadata (default redact)",
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    parser.add_argument("--outbox", type=Path, help="durable outbox SQLite file (env DRIP_MCP_OUTBOX)")
    _state_url_argument(parser)
    parser.add_argument(
        "--max-sessions-per-tenant",
        type=int,
        help="open MCP sessions one tenant may hold (env DRIP_MCP_MAX_SESSIONS_PER_TENANT, default 100)",
    )
    money = parser.add_argument_group("money safety")
    money.add_argument("--max-charge-usdc", help="refuse any single charge above this (env DRIP_MAX_CHARGE_USDC)")
    money.add_argument(
        "--session-budget-usdc",
        help="refuse charges beyond this total per tenant over HTTP (fleet-wide with --state-url), per process over "
        "stdio (env DRIP_SESSION_BUDGET_USDC)",
    )
    money.add_argument("--max-quantity", help="refuse any usage write above this quantity (env DRIP_MAX_QUANTITY)")
    money.add_argument("--confirm-charges", action="store_true", default=None, help="ask the user before every charge")
    http = parser.add_argument_group("HTTP transports")
    http.add_argument("--transport", choices=("stdio", "sse", "streamable-http"), default="stdio")
    http.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    http.add_argument("--port", type=int, default=8000)
    http.add_argument("--path", default="/mcp", help="streamable HTTP path (default /mcp)")
    http.add_argument("--stateless", action="store_true", help="no sessions: any worker serves any request")
    http.add_argument("--json-response", action="store_true", help="plain JSON responses instead of SSE streams")
    http.add_argument("--allowed-host", action="append", default=[], help="extra allowed Host header (repeatable)")
    http.add_argument("--allowed-origin", action="append", default=[], help="extra allowed Origin (repeatable)")
    http.add_argument(
        "--auth-token", help="bearer token clients must send (prefer env DRIP_MCP_AUTH_TOKEN: flags show in ps)"
    )
    http.add_argument(
        "--per-request-key", action="store_true", help="each HTTP client authenticates with its own Drip key"
    )
    http.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (needs --stateless)")
    http.add_argument(
        "--oauth-issuer",
        help="OAuth 2.1 resource-server mode: accept JWTs from this issuer (env DRIP_MCP_OAUTH_ISSUER)",
    )
    http.add_argument(
        "--oauth-audience", help="the audience (aud) tokens must be issued for (env DRIP_MCP_OAUTH_AUDIENCE)"
    )
    http.add_argument(
        "--oauth-jwks-url", help="the issuer's JWKS (env DRIP_MCP_OAUTH_JWKS_URL; default: from its discovery document)"
    )


SERVE_DESCRIPTION = (
    "MCP server for the Drip usage-billing API (stdio by default). The API key is read from the environment "
    "only: DRIP_API_KEY=pk_... or sk_... (never a flag: command lines show in ps). Try it offline with --sandbox."
)
SUBCOMMAND_EPILOG = (
    "other commands (each with --help):\n"
    "  drip-mcp sandbox   serve the Drip-compatible sandbox API over HTTP\n"
    "  drip-mcp demo      run a scripted agent session against a throwaway sandbox\n"
    "  drip-mcp tools     print the tool manifest (tools.json) or check it\n"
    "  drip-mcp outbox    inspect and drain the durable outbox\n"
    "`drip-mcp [flags]` is `drip-mcp serve [flags]`; see docs/deployment.md for HTTP deployments."
)


def _state_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-url",
        help="postgresql://... state store shared by a fleet (env DRIP_MCP_STATE_URL; default SQLite in the state dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drip-mcp", description="MCP server for the Drip usage-billing API (stdio by default)."
    )
    parser.add_argument("--version", action="version", version=f"drip-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")
    _serve_parser(
        sub.add_parser(
            "serve",
            help="run the MCP server (the default)",
            prog="drip-mcp [serve]",
            description=SERVE_DESCRIPTION,
            epilog=SUBCOMMAND_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )

    sandbox = sub.add_parser("sandbox", help="serve the Drip-compatible sandbox API over HTTP")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--db", type=Path, help="SQLite file (env DRIP_SANDBOX_DB; default in the state dir)")
    sandbox.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback host")
    add_webhook_host_arguments(sandbox)

    sub.add_parser("demo", help="run a scripted agent session against a throwaway sandbox")
    tools = sub.add_parser("tools", help="print the tool manifest (tools.json) or check it")
    tools.add_argument("--check", action="store_true", help="exit 1 if tools.json or the README's tool table is stale")
    tools.add_argument("--output", type=Path, help="write the manifest here instead of stdout")
    tools.add_argument("--readme", type=Path, help="rewrite the tool table in this README (between its markers)")

    state = sub.add_parser("state", help="the state store (SQLite in the state dir, or --state-url PostgreSQL)")
    state_actions = state.add_subparsers(dest="state_command", required=True)
    _state_url_argument(state_actions.add_parser("migrate", help="apply the schema migrations; print the version"))

    outbox_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `drip-mcp --help` is the serve flags' help (the main command); its epilog lists the other commands.
    if not args_list or args_list[0] not in (*SUBCOMMANDS, "--version"):
        args_list.insert(0, "serve")
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "sandbox":
            return _run_sandbox(args)
        if args.command == "tools":
            return _run_tools(args)
        if args.command == "demo":
            from drip_mcp.demo import run_demo

            return run_demo()
        if args.command == "outbox":
            return outbox_cli.run(args)
        if args.command == "state":
            return _run_state_migrate(args)
        return _run_serve(args)
    except ConfigurationError as exc:
        print(f"drip-mcp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, sqlite3.Error) as exc:  # an unwritable state dir, a locked or corrupt database file
        print(f"drip-mcp: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _run_serve(args: argparse.Namespace) -> int:
    from drip_mcp.logs import configure_logging
    from drip_mcp.settings import Settings

    settings = Settings.load(
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        sandbox=args.sandbox,
        sandbox_db=args.sandbox_db,
        surface=args.surface,
        toolsets=args.toolsets,
        tools=args.tools,
        exclude_tools=args.exclude_tools,
        read_only=args.read_only,
        metadata_policy=args.metadata_policy,
        outbox=args.outbox,
        max_charge_usdc=args.max_charge_usdc,
        session_budget_usdc=args.session_budget_usdc,
        max_quantity=args.max_quantity,
        confirm_charges=args.confirm_charges,
        require_key=not (args.per_request_key or args.sandbox),
        state_url=args.state_url,
        max_sessions_per_tenant=args.max_sessions_per_tenant,
    )
    masking = configure_logging(args.log_level, secrets=[settings.api_key.reveal()] if settings.api_key else [])
    if args.transport == "stdio":
        from drip_mcp.stdio import serve_stdio

        serve_stdio(settings)
        return 0
    from drip_mcp.http import HttpOptions, serve_http

    options = HttpOptions.from_args(args)
    masking.add(options.auth_token or "")
    serve_http(settings, options)
    return 0


def _run_state_migrate(args: argparse.Namespace) -> int:
    """``drip-mcp state migrate``: open the store (which applies missing migrations) and print its version."""
    import anyio

    from drip_mcp.settings import Settings
    from drip_mcp.state import open_state

    settings = Settings.load(api_key="", require_key=False, state_url=args.state_url)

    async def migrate() -> tuple[str, int]:
        async with open_state(settings) as store:
            return store.kind, await store.schema_version()

    kind, version = anyio.run(migrate)
    print(f"drip-mcp: {kind} state store at schema version {version}")
    return 0


def _run_sandbox(args: argparse.Namespace) -> int:
    from drip_mcp.sandbox.config import FaultConfig
    from drip_mcp.sandbox.serve import serve
    from drip_mcp.settings import Settings

    settings = Settings.load(api_key="", require_key=False, sandbox_db=args.db)  # the sandbox takes any test key
    if settings.sandbox_db_path.parent == settings.state_dir:
        secure_state_dir(settings.state_dir)
    try:
        serve(
            host=args.host,
            port=args.port,
            db_path=settings.sandbox_db_path,
            allow_remote=args.allow_remote,
            faults=FaultConfig.from_env(settings.sandbox_faults),
            webhook_allowed_hosts=webhook_hosts_from_args(args) or settings.sandbox_webhook_hosts,
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return 0


def _run_tools(args: argparse.Namespace) -> int:
    from drip_mcp.manifest import check_manifest, check_readme, render_manifest, write_readme_table

    if args.check:
        problems = [p for p in (check_manifest(args.output), check_readme(args.readme)) if p]
        for problem in problems:
            print(f"drip-mcp: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if args.readme:
        write_readme_table(args.readme)
    text = render_manifest()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    elif not args.readme:
        sys.stdout.write(text)
    return 0
