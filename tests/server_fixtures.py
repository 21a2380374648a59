"""Shared harness for the MCP-server tests (imported by name: tests/ has no __init__).

`open_harness` builds the whole stack in-process: the sandbox (SQLite in
`tmp_path`), a `DripClient` over a *recording* transport, `build_server`, and
an `mcp.Client` connected in ``auto`` or ``legacy`` mode. `Harness.sent` lists
every HTTP request the client made to Drip, so a test can prove that nothing
was sent. Webhook deliveries go to an `httpx2.MockTransport`, never the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from drip_mcp.api.client import DripClient
from drip_mcp.sandbox import Sandbox, SandboxConfig, Store
from drip_mcp.server import DripServer, build_server
from drip_mcp.settings import Settings
from drip_mcp.tools import TOOLS_BY_NAME

__all__ = [
    "ERROR_KEYS",
    "MODES",
    "PK",
    "SK",
    "Harness",
    "RecordingTransport",
    "SentRequest",
    "assert_error",
    "assert_ok",
    "file_exists",
    "open_harness",
    "read_secret_file",
    "result_payload",
    "state_env",
]

SK = "sk_test_serversuite0001"
PK = "pk_test_serversuite0001"
MODES = ("auto", "legacy")
ERROR_KEYS = {"code", "message", "status", "retryable", "hint"}


def state_env() -> dict[str, str]:
    """The environment `Settings.load` should see in a test: just the test's own state directory."""
    return {"DRIP_MCP_STATE_DIR": os.environ["DRIP_MCP_STATE_DIR"]}


@dataclass(frozen=True)
class SentRequest:
    """One HTTP request the Drip client sent."""

    method: str
    path: str
    body: Any

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Delegates to `inner` and remembers every request (method, path, parsed JSON body)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner
        self.sent: list[SentRequest] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.content
        body = json.loads(raw) if raw else None
        self.sent.append(SentRequest(request.method, request.url.path, body))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Harness:
    """A connected MCP client, the server behind it and the sandbox behind that."""

    mcp: Client
    server: DripServer
    sandbox: Sandbox
    transport: RecordingTransport
    settings: Settings
    api_key: str
    deliveries: list[httpx2.Request] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.sandbox.store

    @property
    def sent(self) -> list[SentRequest]:
        return self.transport.sent

    def sent_to(self, method: str, path: str) -> list[SentRequest]:
        return [r for r in self.sent if r.method == method and r.path == path]

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        return await self.mcp.call_tool(name, dict(arguments or {}))

    async def ok(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call `name`, assert success (schema, text block, no key) and return the structured content."""
        result = await self.call(name, arguments)
        return assert_ok(name, result, api_key=self.api_key)

    async def error(self, name: str, arguments: Mapping[str, Any] | None, code: str) -> dict[str, Any]:
        """Call `name`, assert a structured error with `code` and return the error object."""
        result = await self.call(name, arguments)
        return assert_error(result, code, api_key=self.api_key)

    async def call_op(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call operation `name` as a client of this surface would: as a tool on ``full``, through
        ``drip_call_operation`` on ``core``."""
        if self.settings.surface == "core":
            return await self.call("drip_call_operation", {"operation": name, "arguments": dict(arguments or {})})
        return await self.call(name, arguments)

    async def op(self, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`call_op`, asserting success; the operation's structured result."""
        return assert_ok(name, await self.call_op(name, arguments), api_key=self.api_key)

    async def op_error(self, name: str, arguments: Mapping[str, Any] | None, code: str) -> dict[str, Any]:
        """`call_op`, asserting a structured error with `code`; the error object."""
        return assert_error(await self.call_op(name, arguments), code, api_key=self.api_key)

    async def new_customer(self, external_id: str = "user-1") -> str:
        created = await self.ok("drip_create_customer", {"external_customer_id": external_id})
        customer_id: str = created["customer"]["id"]
        return customer_id

    async def new_run(self, customer_id: str, workflow: str = "research_agent") -> str:
        started = await self.ok("drip_start_run", {"customer_id": customer_id, "workflow": workflow})
        run_id: str = started["run_id"]
        return run_id

    async def new_webhook(self, url: str = "http://127.0.0.1:9/drip") -> dict[str, Any]:
        return await self.ok("drip_create_webhook", {"url": url, "events": ["*"]})


def _text_of(result: Any) -> str:
    assert len(result.content) == 1, result.content
    block = result.content[0]
    assert block.type == "text"
    text: str = block.text
    return text


def assert_ok(name: str, result: Any, *, api_key: str | None = None) -> dict[str, Any]:
    """A successful result: schema-valid structured content mirrored by one compact JSON text block."""
    assert not result.is_error, result.content
    structured = result.structured_content
    assert isinstance(structured, dict)
    TOOLS_BY_NAME[name].output_model.model_validate(structured)
    text = _text_of(result)
    assert json.loads(text) == structured
    assert text == json.dumps(structured, separators=(",", ":"), ensure_ascii=False)
    if api_key is not None:
        assert api_key not in text
    return structured


def result_payload(result: Any) -> dict[str, Any]:
    """What a client reads from a result: its structured content, or for an error the JSON of its text block."""
    if result.is_error:
        assert result.structured_content is None  # TypeScript clients drop errors whose structure mismatches
        payload: dict[str, Any] = json.loads(_text_of(result))
        return payload
    structured: dict[str, Any] = result.structured_content
    return structured


def assert_error(result: Any, code: str, *, api_key: str | None = None) -> dict[str, Any]:
    """An ``isError`` result with `code` in its JSON: the stable keys, no SDK fallback text, no traceback, no key."""
    assert result.is_error, result.structured_content
    structured = result_payload(result)
    assert isinstance(structured, dict)
    assert set(structured) == {"error"}
    error: dict[str, Any] = structured["error"]
    assert set(error) >= ERROR_KEYS, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["retryable"], bool)
    text = _text_of(result)
    assert json.loads(text) == structured
    assert "Error executing tool" not in text
    assert "Traceback" not in text
    if api_key is not None:
        assert api_key not in text
    return error


def read_secret_file(path: str | Path) -> str:
    """The secret stored in a webhook secret file (sync: tests call it from async code)."""
    return Path(path).read_text(encoding="utf-8").strip()


def file_exists(path: str | Path) -> bool:
    return Path(path).exists()


def _accept_delivery(sink: list[httpx2.Request]) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        sink.append(request)
        return httpx2.Response(200, json={"received": True})

    return httpx2.MockTransport(handler)


@asynccontextmanager
async def open_harness(
    tmp_path: Path,
    mode: str = "auto",
    *,
    api_key: str = SK,
    starting_balance_usdc: Any = None,
    **settings_overrides: Any,
) -> AsyncIterator[Harness]:
    """The in-process stack: sandbox → recording transport → DripClient → DripServer → mcp.Client(mode)."""
    db = tmp_path / "s.db"
    state = {"DRIP_MCP_STATE_DIR": str(tmp_path / "state")}  # the autouse fixture's state dir, module fixtures too
    # Every operation listed as its own tool unless a test asks for the default "core" surface.
    settings_overrides.setdefault("surface", "full")
    settings = Settings.load(state, api_key=api_key, sandbox=True, sandbox_db=db, **settings_overrides)
    config = SandboxConfig(db_path=db)
    if starting_balance_usdc is not None:
        config = SandboxConfig(db_path=db, starting_balance_usdc=starting_balance_usdc)
    deliveries: list[httpx2.Request] = []
    async with Sandbox(config, delivery_transport=_accept_delivery(deliveries)) as sandbox:
        transport = RecordingTransport(sandbox.transport())
        assert settings.api_key is not None
        async with DripClient(settings.api_key, base_url="http://sandbox.local/v1", transport=transport) as client:
            server = build_server(settings, client)
            async with Client(server, mode=mode) as mcp_client:  # type: ignore[arg-type]
                yield Harness(mcp_client, server, sandbox, transport, settings, api_key, deliveries)
