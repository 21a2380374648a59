"""The MCP server: tools from the registry, scoped by key, with structured results.

``build_server(settings, client)`` returns an `MCPServer` whose tool list and
tool calls come from the registry (`drip_mcp.tools`) only. Every call goes through
`DripServer.call_tool`, which applies, in order:

1. the operator's filters, the key's scope and the request's tool gate, if any
   (OAuth scopes over HTTP), refused before any request: a public key never
   reaches a secret-only tool, a token never a tool outside its scopes;
2. input validation against the tool's pydantic model (errors name the field;
   ``--max-quantity`` is enforced here, through the validation context);
3. the handler, whose `DripError`s become structured ``isError`` results
   ``{code, message, status, retryable, hint, idempotency_key?}``;
4. the tool's ledger hook, for a call that finished either way.

Anything unexpected is logged (without arguments) and reported as
``INTERNAL_ERROR``; the model never sees a traceback or a key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from drip_mcp._version import __version__
from drip_mcp.api.client import DripClient
from drip_mcp.errors import ConfigurationError, DripError, InvalidInputError, PublicKeyNotAllowedError
from drip_mcp.features import completions, elicitation, identity, prompts, resources
from drip_mcp.keys import KeyType
from drip_mcp.launch import launch_command
from drip_mcp.settings import Settings
from drip_mcp.state.tenancy import tenant_of
from drip_mcp.tools import CATALOGUE_TOOLS, Operation, ToolSpec, operations, select_tools, spec_of
from drip_mcp.tools.base import QUANTITY_LIMIT
from drip_mcp.tools.catalogue import CALL_OPERATION, search_score
from drip_mcp.tools.context import NeedsClientInput, Services, ToolContext

__all__ = ["DripServer", "ToolGate", "banner", "build_server", "error_result"]

logger = logging.getLogger("drip_mcp.server")

INSTRUCTIONS = """\
Tools for the Drip usage-billing API. drip_track_usage meters work on the ledger (no money moves); \
drip_charge bills a customer's balance (money moves: preview with dry_run first). Every write returns an \
idempotency_key: to retry after an error or timeout, call again with that key so Drip records it once. \
Metadata must carry operational context only (model, tool, status, latency), never PII, secrets or prompts. \
Call drip_ping to see the key type/mode and enabled tools."""

ClientResolver = Callable[[], DripClient]
# Listed on the core surface, callable on both (they only search and call what the caller may use anyway).
_CATALOGUE_BY_NAME: dict[str, ToolSpec[Any, Any]] = {t.name: t for t in CATALOGUE_TOOLS}


class ToolGate(Protocol):
    """A per-request narrowing of the allowed tools (OAuth scopes): what it allows, and the error for the rest."""

    def allows(self, spec: Operation) -> bool: ...

    def refusal(self, spec: Operation) -> DripError: ...


# The gate of the request being served, or None for no narrowing (stdio, bearer token, per-request keys).
GateResolver = Callable[[], ToolGate | None]


def _no_gate() -> ToolGate | None:
    return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_result(error: DripError) -> CallToolResult:
    """An ``isError`` result: the structured error ``{"error": {code, message, status, retryable, hint, ...}}``
    as the JSON of its text block.

    Not as ``structuredContent``: TypeScript-SDK clients (the MCP Inspector, and the clients built like it)
    check structured content against the tool's result shape even on errors, and drop the whole result with
    ``-32602`` when it does not match, so the code and hint would never reach the model.
    """
    payload = {"error": error.to_dict()}
    return CallToolResult(content=[TextContent(type="text", text=_dumps(payload))], is_error=True)


def _validation_error(tool: str, exc: ValidationError) -> InvalidInputError:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and all(err["type"] == "quantity_limit" for err in errors):
        return _quantity_limit_error(errors)
    details = []
    for err in errors:
        path = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        details.append({"path": path, "message": err["msg"]})
    summary = "; ".join(f"{d['path']}: {d['message']}" for d in details[:5])
    more = f" (+{len(details) - 5} more)" if len(details) > 5 else ""
    return InvalidInputError(f"Invalid arguments for {tool}: {summary}{more}", details=details)


def _quantity_limit_error(errors: list[Any]) -> InvalidInputError:
    """``--max-quantity`` refused a write: its own code, paths written like ``events[0].quantity``."""
    details = []
    for err in errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        details.append({"path": path, "message": f"must be <= {err['ctx']['limit']}"})
    first = errors[0]["ctx"]
    return InvalidInputError(
        f"{details[0]['path']} {first['quantity']} exceeds the operator's limit of {first['limit']} per write; "
        "nothing was sent.",
        code="QUANTITY_LIMIT_EXCEEDED",
        details=details,
        hint="Split the usage into smaller writes, or ask the operator to raise --max-quantity.",
    )


class DripServer(MCPServer[Any]):
    """An MCPServer whose tools are the drip-mcp registry, filtered per key and per operator."""

    def __init__(
        self,
        settings: Settings,
        resolve_client: ClientResolver,
        services: Services,
        tool_gate: GateResolver | None = None,
    ) -> None:
        super().__init__(
            "drip-mcp",
            title="Drip billing",
            description="Meter and bill agent work with the Drip usage-billing API.",
            instructions=INSTRUCTIONS,
            version=__version__,
            website_url="https://drippay.dev",
            icons=identity.ICONS,
            log_level="WARNING",
            cache_hints=identity.CACHE_HINTS,
            subscriptions=identity.SERVES_SUBSCRIPTIONS,
        )
        self.drip_settings = settings
        self.services = services
        self._resolve_client = resolve_client
        self._tool_gate: GateResolver = tool_gate or _no_gate
        known = operations().keys() | _CATALOGUE_BY_NAME.keys()
        unknown = sorted((set(settings.tools) | set(settings.exclude_tools)) - known)
        if unknown:
            raise ConfigurationError(f"unknown tool name(s): {', '.join(unknown)} (see `drip-mcp tools`)")
        # What a key type may call (every operation the key and the operator's filters allow), and what is
        # listed: on "full" all of them; on "core" the core ones plus the two catalogue tools.
        self._allowed: dict[KeyType, dict[str, Operation]] = {
            kt: {t.name: t for t in self._select(kt)} for kt in KeyType
        }
        self._operator: dict[str, Operation] = self._allowed[KeyType.SECRET]
        self._validation_context = {QUANTITY_LIMIT: settings.max_quantity}
        self.resource(
            "drip://session/ledger",
            name="session_ledger",
            title="Session ledger",
            description="What this tenant tracked and charged, with totals per customer.",
            mime_type="application/json",
        )(self._ledger_json)
        resources.register(self, resolve_client)
        prompts.register(self, lambda: self.tool_names(resolve_client().key_type))
        self.completer = completions.register(self, resolve_client)

    def tool_names(self, key_type: KeyType) -> list[str]:
        """The operations a key of `key_type` may call here, in catalogue order."""
        return list(self._allowed[key_type])

    def listed_names(self, key_type: KeyType) -> list[str]:
        """What tools/list shows a key of `key_type` on this server's surface (before any OAuth scope)."""
        return list(self._surface(dict(self._allowed[key_type])))

    def _surface(self, visible: dict[str, Operation]) -> dict[str, Operation]:
        """What is listed of the `visible` operations: all of them ("full"), or the core ones plus the two
        catalogue tools when anything is left to find ("core")."""
        if self.drip_settings.surface == "full":
            return dict(visible)
        listed = {name: spec for name, spec in visible.items() if spec.core}
        if len(listed) < len(visible):
            listed.update((t.name, t) for t in CATALOGUE_TOOLS)
        return listed

    def _mcp_tool(self, spec: Operation, visible: dict[str, Operation]) -> MCPTool:
        """The listed tool; drip_call_operation is annotated for what it can reach (read-only under --read-only
        or a read-only OAuth scope)."""
        if spec.name != CALL_OPERATION:
            return spec.mcp_tool
        reachable = visible.values()
        annotations = spec.annotations.model_copy(
            update={
                "read_only_hint": all(s.read_only for s in reachable),
                "destructive_hint": any(s.destructive for s in reachable),
                "idempotent_hint": all(s.idempotent for s in reachable),
            }
        )
        return spec.mcp_tool.model_copy(update={"annotations": annotations})

    def find_operations(self, key_type: KeyType, query: str | None, toolset: str | None) -> list[Operation]:
        """The operations this caller may call that match `query` (words) and `toolset`, best first."""
        specs = [s for s in self._visible(key_type).values() if toolset is None or s.toolset == toolset]
        words = [w for w in (query or "").lower().replace("_", " ").split() if w]
        if not words:
            return specs
        scored = [(search_score(s, words), i, s) for i, s in enumerate(specs)]
        return [s for score, _, s in sorted(scored, key=lambda t: (-t[0], t[1])) if score > 0]

    def tenant_of(self, client: DripClient) -> str:
        """Who a call made with `client` acts for: the one place the tenant rule is applied."""
        return tenant_of(client.api_key)

    async def _ledger_json(self) -> str:
        tenant = self.tenant_of(self._resolve_client())
        return _dumps(await self.services.ledger.summary(self.services.scope_of(tenant)))

    def _select(self, key_type: KeyType) -> tuple[Operation, ...]:
        s = self.drip_settings
        return select_tools(
            key_type, toolsets=s.toolsets, tools=s.tools, exclude_tools=s.exclude_tools, read_only=s.read_only
        )

    async def _record(
        self, ctx: ToolContext, spec: ToolSpec[Any, Any], inp: Any, out: Any, error: DripError | None
    ) -> None:
        """Append what the tool's ledger hook says this call wrote (usage and charges) to the tenant's ledger."""
        if spec.ledger is not None:
            for entry in spec.ledger(inp, out, error):
                await self.services.ledger.add(entry, scope=ctx.scope)

    def _visible(self, key_type: KeyType) -> dict[str, Operation]:
        """The tools this request may list and call: the key's allowed set, narrowed by the request's gate."""
        allowed = self._allowed[key_type]
        gate = self._tool_gate()
        return allowed if gate is None else {name: spec for name, spec in allowed.items() if gate.allows(spec)}

    async def list_tools(self) -> list[MCPTool]:
        key_type = self._resolve_client().key_type
        visible = self._visible(key_type)
        return [self._mcp_tool(spec, visible) for spec in self._surface(visible).values()]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        listed = self._operator.get(name) or _CATALOGUE_BY_NAME.get(name)
        if listed is None:
            reason = "is disabled by the server's operator" if name in operations() else "does not exist"
            return error_result(
                DripError(f"Tool {name!r} {reason}.", code="UNKNOWN_TOOL", hint="Call tools/list (or drip_ping).")
            )
        try:
            client = self._resolve_client()
            if name not in self._allowed[client.key_type] and name not in _CATALOGUE_BY_NAME:
                raise PublicKeyNotAllowedError(name)
            gate = self._tool_gate()
            if gate is not None and name not in _CATALOGUE_BY_NAME and not gate.allows(listed):
                raise gate.refusal(listed)  # the catalogue tools reach only what the gate allows anyway
            spec = spec_of(name)  # imports the operation's toolset module on its first call
            try:
                inp = spec.input_model.model_validate(arguments, context=self._validation_context)
            except ValidationError as exc:
                raise _validation_error(name, exc) from None
            ctx = ToolContext(
                client=client,
                settings=self.drip_settings,
                services=self.services,
                tenant=self.tenant_of(client),
                mcp=context,
                durable=spec.durable,
                allowed_tools=tuple(self._visible(client.key_type)),
                catalogue=_CallerCatalogue(self, client.key_type, context),
                payments=elicitation.URL_ELICITATION,
            )
            try:
                output = await spec.handler(ctx, inp)
            except DripError as exc:
                await self._record(ctx, spec, inp, None, exc)
                raise
            await self._record(ctx, spec, inp, output, None)
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
        if isinstance(output, CallToolResult | InputRequiredResult):
            return output  # drip_call_operation: the called operation's own result
        structured = output.model_dump(mode="json")
        return CallToolResult(
            content=[TextContent(type="text", text=_dumps(structured))], structured_content=structured
        )


@dataclass(frozen=True)
class _CallerCatalogue:
    """`Catalogue` for one call: the caller's key type (and OAuth scopes) decide what is found, and calls go
    back through `DripServer.call_tool`, so a catalogue call gets every check a direct call gets."""

    server: DripServer
    key_type: KeyType
    context: Context[Any, Any] | None

    def find(self, query: str | None, toolset: str | None) -> list[Operation]:
        return self.server.find_operations(self.key_type, query, toolset)

    async def call(self, operation: str, arguments: dict[str, Any]) -> CallToolResult | InputRequiredResult:
        if operation not in self.server.tool_names(self.key_type):  # an OAuth gate, if any, refuses in call_tool
            spec = operations().get(operation)
            hint = "Call drip_find_operations to see the operations you can use."
            if spec is None:
                raise DripError(
                    f"Operation {operation!r} does not exist.", code="UNKNOWN_OPERATION", status=404, hint=hint
                )
            if spec.scope is KeyType.SECRET and self.key_type is KeyType.PUBLIC:
                raise PublicKeyNotAllowedError(operation)
            raise DripError(
                f"Operation {operation!r} is not enabled on this server (--read-only, --toolsets or --tools).",
                code="OPERATION_NOT_ENABLED",
                status=403,
                hint=hint,
            )
        return await self.server.call_tool(operation, arguments, self.context)


def build_server(
    settings: Settings,
    client: DripClient | None = None,
    *,
    resolve_client: ClientResolver | None = None,
    services: Services | None = None,
    tool_gate: GateResolver | None = None,
) -> DripServer:
    """The MCP server for `settings`, calling Drip through `client` (or a per-request resolver).

    `tool_gate` returns the current request's `ToolGate` (OAuth scopes over HTTP) or None.
    """
    if resolve_client is None:
        if client is None:
            raise ValueError("build_server needs a client or a resolve_client")
        fixed = client

        def resolve_client() -> DripClient:
            return fixed

    return DripServer(settings, resolve_client, services or Services.for_settings(settings), tool_gate)


def banner(settings: Settings, server: DripServer, transport: str) -> str:
    """One line for stderr: what runs, which key, how to connect."""
    key = settings.api_key
    if key is None:
        return f"drip-mcp {__version__}: {transport} -> {settings.base_url}; per-request keys"
    tools = server.tool_names(key.type)
    listed = server.listed_names(key.type)
    target = f"sandbox (db: {settings.sandbox_db})" if settings.sandbox else settings.base_url
    parts = [
        f"drip-mcp {__version__}: {transport} -> {target}",
        f"key {key.masked} ({key.type.value}, {key.mode.value})",
        f"{settings.surface} surface: {len(listed)} tools listed, {len(tools)} operations callable",
    ]
    secret_only = len(server.tool_names(KeyType.SECRET)) - len(tools)
    if key.type is KeyType.PUBLIC and secret_only > 0:
        parts.append(f"{secret_only} more operations (webhooks, plans, contracts...) need DRIP_API_KEY=sk_...")
    if transport == "stdio":
        command = launch_command() + (" --sandbox" if settings.sandbox else "")
        parts.append(f"speaking MCP on stdin/stdout: add `{command}` as an mcpServers command to connect")
    money = [name for name in tools if operations()[name].moves_money]
    if key.is_live and money:
        caps = server.services.guard.describe()
        verb = "moves" if len(money) == 1 else "move"
        parts.append(f"LIVE key: {', '.join(money)} {verb} real money; caps: {', '.join(caps) if caps else 'none'}")
    return "; ".join(parts)
