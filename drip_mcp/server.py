"""The MCP server: tools from the registry, scoped by key, with structured results.

``build_server(settings, client)`` returns an `MCPServer` whose tool list and
tool calls come from `drip_mcp.tools.TOOLS` only. Every call goes through
`DripServer.call_tool`, which applies, in order:

1. the operator's filters and the key's scope (refused before any request:
   a public key never reaches a secret-only tool);
2. input validation against the tool's pydantic model (errors name the field);
3. the handler, whose `DripError`s become structured ``isError`` results
   ``{code, message, status, retryable, hint, idempotency_key?}``.

Anything unexpected is logged (without arguments) and reported as
``INTERNAL_ERROR``; the model never sees a traceback or a key.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from drip_mcp._version import __version__
from drip_mcp.charging import NeedsClientInput
from drip_mcp.client import DripClient
from drip_mcp.errors import ConfigurationError, DripError, InvalidInputError, PublicKeyNotAllowedError
from drip_mcp.keys import KeyType
from drip_mcp.ledger import LedgerEntry, SpendGuard
from drip_mcp.settings import Settings
from drip_mcp.tools import TOOLS_BY_NAME, ToolSpec, select_tools
from drip_mcp.tools.context import Services, ToolContext

__all__ = ["DripServer", "build_server", "error_result", "open_client", "outbox_target", "serve_stdio"]

logger = logging.getLogger("drip_mcp.server")

INSTRUCTIONS = """\
Tools for the Drip usage-billing API. drip_track_usage meters work on the ledger (no money moves); \
drip_charge bills a customer's balance (money moves: preview with dry_run first). Every write returns an \
idempotency_key: to retry after an error or timeout, call again with that key so Drip records it once. \
Metadata must carry operational context only (model, tool, status, latency), never PII, secrets or prompts. \
Call drip_ping to see the key type/mode and enabled tools."""

ClientResolver = Callable[[], DripClient]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_result(error: DripError) -> CallToolResult:
    """An ``isError`` tool result carrying the structured error."""
    payload = {"error": error.to_dict()}
    return CallToolResult(
        content=[TextContent(type="text", text=_dumps(payload))], structured_content=payload, is_error=True
    )


def _validation_error(tool: str, exc: ValidationError) -> InvalidInputError:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        details.append({"path": path, "message": err["msg"]})
    summary = "; ".join(f"{d['path']}: {d['message']}" for d in details[:5])
    more = f" (+{len(details) - 5} more)" if len(details) > 5 else ""
    return InvalidInputError(f"Invalid arguments for {tool}: {summary}{more}", details=details)


class DripServer(MCPServer[Any]):
    """An MCPServer whose tools are the drip-mcp registry, filtered per key and per operator."""

    def __init__(self, settings: Settings, resolve_client: ClientResolver, services: Services) -> None:
        super().__init__(
            "drip-mcp",
            title="Drip billing",
            description="Meter and bill agent work with the Drip usage-billing API.",
            instructions=INSTRUCTIONS,
            version=__version__,
            website_url="https://drippay.dev",
            log_level="WARNING",
        )
        self.drip_settings = settings
        self.services = services
        self._resolve_client = resolve_client
        unknown = sorted((set(settings.tools) | set(settings.exclude_tools)) - TOOLS_BY_NAME.keys())
        if unknown:
            raise ConfigurationError(f"unknown tool name(s): {', '.join(unknown)} (see `drip-mcp tools`)")
        self._allowed: dict[KeyType, dict[str, ToolSpec[Any, Any]]] = {
            kt: {t.name: t for t in self._select(kt)} for kt in KeyType
        }
        self._operator: dict[str, ToolSpec[Any, Any]] = self._allowed[KeyType.SECRET]
        services.allowed_tools = self.tool_names
        self.resource(
            "drip://session/ledger",
            name="session_ledger",
            title="Session ledger",
            description="What this server process tracked and charged, with totals per customer.",
            mime_type="application/json",
        )(self._ledger_json)

    def tool_names(self, key_type: KeyType) -> list[str]:
        """The tools a key of `key_type` may list and call here, in catalogue order."""
        return list(self._allowed[key_type])

    def _ledger_json(self) -> str:
        return _dumps(self.services.ledger.summary())

    def _select(self, key_type: KeyType) -> tuple[ToolSpec[Any, Any], ...]:
        s = self.drip_settings
        return select_tools(
            key_type, toolsets=s.toolsets, tools=s.tools, exclude_tools=s.exclude_tools, read_only=s.read_only
        )

    def _record(self, spec: ToolSpec[Any, Any], inp: Any, out: Any, error: DripError | None) -> None:
        """Append usage and charge writes to the session ledger."""
        ledger = self.services.ledger
        if spec.name == "drip_charge":
            if getattr(inp, "dry_run", False) or (out is not None and out.status != "charged"):
                return
            ledger.add(
                LedgerEntry(
                    kind="charge",
                    customer_id=inp.customer_id,
                    meter=inp.meter,
                    quantity=inp.quantity,
                    amount_usdc=out.amount_usdc if out is not None else None,
                    idempotency_key=out.idempotency_key
                    if out is not None
                    else (error.idempotency_key if error else None),
                    outcome=("duplicate" if out.is_duplicate else "charged") if out is not None else "failed",
                )
            )
        elif spec.name == "drip_track_usage":
            ledger.add(
                LedgerEntry(
                    kind="usage",
                    customer_id=inp.customer_id,
                    meter=inp.meter,
                    quantity=inp.quantity,
                    amount_usdc=None,
                    idempotency_key=out.idempotency_key
                    if out is not None
                    else (error.idempotency_key if error else None),
                    outcome=out.status if out is not None else "failed",
                )
            )
        elif spec.name == "drip_track_usage_batch" and out is not None:
            for item in out.results:
                event = inp.events[item.index]
                ledger.add(
                    LedgerEntry(
                        kind="usage",
                        customer_id=event.customer_id,
                        meter=event.meter,
                        quantity=event.quantity,
                        amount_usdc=None,
                        idempotency_key=item.idempotency_key,
                        outcome=item.status,
                    )
                )

    async def list_tools(self) -> list[MCPTool]:
        allowed = self._allowed[self._resolve_client().key_type]
        return [spec.mcp_tool for spec in allowed.values()]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        spec = self._operator.get(name)
        if spec is None:
            reason = "is disabled by the server's operator" if name in TOOLS_BY_NAME else "does not exist"
            return error_result(
                DripError(f"Tool {name!r} {reason}.", code="UNKNOWN_TOOL", hint="Call tools/list (or drip_ping).")
            )
        try:
            client = self._resolve_client()
            if name not in self._allowed[client.key_type]:
                raise PublicKeyNotAllowedError(name)
            try:
                inp = spec.input_model.model_validate(arguments)
            except ValidationError as exc:
                raise _validation_error(name, exc) from None
            _check_quantities(inp, self.drip_settings.max_quantity)
            ctx = ToolContext(client=client, settings=self.drip_settings, services=self.services, mcp=context)
            try:
                output = await spec.handler(ctx, inp)
            except DripError as exc:
                self._record(spec, inp, None, exc)
                raise
            self._record(spec, inp, output, None)
        except NeedsClientInput as needed:
            return needed.result
        except DripError as exc:
            logger.info("%s failed: %s (%s)", name, exc.code, exc.status)
            return error_result(exc)
        except Exception:
            logger.exception("%s raised an unexpected error", name)
            return error_result(
                DripError(
                    f"{name} failed unexpectedly inside drip-mcp.",
                    code="INTERNAL_ERROR",
                    hint="This is a drip-mcp bug; the details are in the server log.",
                )
            )
        structured = output.model_dump(mode="json")
        return CallToolResult(
            content=[TextContent(type="text", text=_dumps(structured))], structured_content=structured
        )


def _check_quantity(quantity: Decimal, limit: Decimal | None, path: str = "quantity") -> None:
    """Refuse a usage write above the operator's ``--max-quantity``."""
    if limit is not None and quantity > limit:
        raise InvalidInputError(
            f"{path} {quantity} exceeds the operator's limit of {limit} per write; nothing was sent.",
            code="QUANTITY_LIMIT_EXCEEDED",
            details=[{"path": path, "message": f"must be <= {limit}"}],
            hint="Split the usage into smaller writes, or ask the operator to raise --max-quantity.",
        )


def _check_quantities(inp: Any, limit: Decimal | None) -> None:
    """``--max-quantity`` bounds every usage write: a top-level quantity and each event's."""
    if limit is None:
        return
    if (quantity := getattr(inp, "quantity", None)) is not None:
        _check_quantity(quantity, limit, "quantity")
    for i, event in enumerate(getattr(inp, "events", None) or ()):
        if (quantity := getattr(event, "quantity", None)) is not None:
            _check_quantity(quantity, limit, f"events[{i}].quantity")


def build_server(
    settings: Settings,
    client: DripClient | None = None,
    *,
    resolve_client: ClientResolver | None = None,
    services: Services | None = None,
) -> DripServer:
    """The MCP server for `settings`, calling Drip through `client` (or a per-request resolver)."""
    if resolve_client is None:
        if client is None:
            raise ValueError("build_server needs a client or a resolve_client")
        fixed = client

        def resolve_client() -> DripClient:
            return fixed

    if services is None:
        services = Services(guard=SpendGuard(settings.max_charge_usdc, settings.session_budget_usdc))
    return DripServer(settings, resolve_client, services)


@asynccontextmanager
async def open_client(settings: Settings, *, drain: bool = True) -> AsyncIterator[DripClient]:
    """The Drip client for `settings`: the real API, or the embedded sandbox (in-process, no socket).

    With `settings.outbox` set, durable writes go through that outbox and, when `drain`, a
    background drainer delivers its pending rows for as long as the client is open.
    """
    async with AsyncExitStack() as stack:
        if settings.sandbox:
            from drip_mcp.paths import ensure_private_dir
            from drip_mcp.sandbox import FaultConfig, Sandbox, SandboxConfig

            assert settings.sandbox_db is not None
            ensure_private_dir(settings.sandbox_db.parent)
            from drip_mcp.sandbox.serve import webhook_hosts_from_env

            faults = FaultConfig.from_env(os.environ)  # DRIP_SANDBOX_*: as `drip-mcp sandbox` does
            hosts = webhook_hosts_from_env(os.environ)  # DRIP_SANDBOX_WEBHOOK_HOSTS: loopback-only when unset
            sandbox = await stack.enter_async_context(
                Sandbox(SandboxConfig(db_path=settings.sandbox_db, faults=faults, webhook_allowed_hosts=hosts))
            )
            client = DripClient.from_settings(settings, transport=sandbox.transport())
            client.base_url, client.root_url = "http://sandbox.local/v1", "http://sandbox.local"
        else:
            client = DripClient.from_settings(settings)
        await stack.enter_async_context(client)
        if settings.outbox is not None:
            await _start_outbox(stack, settings, client, drain=drain)
        yield client


async def _start_outbox(stack: AsyncExitStack, settings: Settings, client: DripClient, *, drain: bool) -> None:
    """Attach the outbox to `client` and run its drainer until `stack` closes."""
    import anyio

    from drip_mcp.outbox import Drainer, open_outbox

    assert settings.outbox is not None
    outbox = stack.enter_context(open_outbox(settings.outbox))
    client.attach_outbox(outbox, target=outbox_target(settings))
    if drain:
        group = await stack.enter_async_context(anyio.create_task_group())
        group.start_soon(Drainer(outbox, client).run)
        stack.callback(group.cancel_scope.cancel)


def outbox_target(settings: Settings) -> str | None:
    """What outbox rows are scoped to besides the key: the sandbox database, else (None) the base URL."""
    return f"sandbox:{settings.sandbox_db.resolve()}" if settings.sandbox and settings.sandbox_db else None


def banner(settings: Settings, server: DripServer, transport: str) -> str:
    """One line for stderr: what runs, which key, how to connect."""
    key = settings.api_key
    if key is None:
        return f"drip-mcp {__version__}: {transport} -> {settings.base_url}; per-request keys"
    tools = server.tool_names(key.type)
    target = f"sandbox (db: {settings.sandbox_db})" if settings.sandbox else settings.base_url
    parts = [
        f"drip-mcp {__version__}: {transport} -> {target}",
        f"key {key.masked} ({key.type.value}, {key.mode.value})",
        f"{len(tools)} tools",
    ]
    if key.type is KeyType.PUBLIC and len(server.tool_names(KeyType.SECRET)) > len(tools):
        parts.append("webhook tools need DRIP_API_KEY=sk_...")
    if transport == "stdio":
        command = "python3 -m drip_mcp" + (" --sandbox" if settings.sandbox else "")
        parts.append(f"speaking MCP on stdin/stdout: add `{command}` as an mcpServers command to connect")
    if key.is_live:
        caps = server.services.guard.describe()
        parts.append(f"LIVE key: drip_charge moves real money; caps: {', '.join(caps) if caps else 'none'}")
    return "; ".join(parts)


def serve_stdio(settings: Settings) -> None:
    """Serve MCP over stdio until the client goes away."""
    import anyio

    async def main() -> None:
        async with open_client(settings) as client:
            server = build_server(settings, client)
            print(banner(settings, server, "stdio"), file=sys.stderr, flush=True)
            await server.run_stdio_async()

    anyio.run(main)
