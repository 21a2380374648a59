"""HTTP transports over real loopback sockets: MCP clients, auth, Host/Origin checks, tenants, shutdown."""

from __future__ import annotations

import contextvars
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from server_fixtures import result_payload
from starlette.types import ASGIApp, Receive, Scope, Send
from transport_helpers import (
    MCP_HEADERS,
    drip_mcp_process,
    initialize_body,
    serving,
    sse_session,
    streamable_session,
)

from drip_mcp._version import __version__
from drip_mcp.cli import build_parser, main
from drip_mcp.errors import ConfigurationError
from drip_mcp.http import HttpOptions, build_http_app, serve_http
from drip_mcp.http.serve import _export_config, _import_config
from drip_mcp.keys import ApiKey
from drip_mcp.runtime import TenantPool
from drip_mcp.settings import AUTH_TOKEN_ENV, Settings, WorkerEnvironment

pytestmark = pytest.mark.anyio

SECRET_KEY = "sk_test_transportSECRET42"
PUBLIC_KEY = "pk_test_transportPUBLIC42"
TOKEN = "s3cret-gateway-token-0123456789"
WEBHOOK_TOOLS = {
    "drip_create_webhook",
    "drip_list_webhooks",
    "drip_get_webhook",
    "drip_delete_webhook",
    "drip_test_webhook",
    "drip_rotate_webhook_secret",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(
        {},
        api_key=SECRET_KEY,
        sandbox=True,
        sandbox_db=tmp_path / "s.db",
        outbox=tmp_path / "outbox.db",
        surface="full",  # every operation listed: these tests compare whole tool lists per key
    )


def structured(result: CallToolResult) -> dict[str, Any]:
    return dict(result_payload(result))


async def exercise(session: ClientSession) -> tuple[set[str], dict[str, Any]]:
    """tools/list then drip_list_meters: the tool names and the call's structured result."""
    tools = {t.name for t in (await session.list_tools()).tools}
    result = await session.call_tool("drip_list_meters", {})
    assert not result.is_error, result
    return tools, structured(result)


# --- MCP clients end to end ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stateless", "json_response"), [(False, False), (True, True)], ids=["stateful-sse-stream", "stateless-json"]
)
async def test_streamable_http_client_lists_tools_and_calls_one_against_the_sandbox(
    settings: Settings, stateless: bool, json_response: bool
) -> None:
    app = build_http_app(settings, HttpOptions(stateless=stateless, json_response=json_response))
    async with serving(app) as base, streamable_session(f"{base}/mcp") as session:
        tools, meters = await exercise(session)
        ping = structured(await session.call_tool("drip_ping", {}))
    assert tools >= WEBHOOK_TOOLS
    assert meters["meters"], meters
    assert ping["sandbox"] is True
    assert ping["key_type"] == "secret"


async def test_streamable_http_serves_at_the_configured_path_only(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(path="/drip/mcp"))
    async with serving(app) as base:
        async with streamable_session(f"{base}/drip/mcp") as session:
            tools, _ = await exercise(session)
        async with httpx2.AsyncClient(timeout=5) as http:
            default = await http.post(f"{base}/mcp", json=initialize_body(), headers=MCP_HEADERS)
    assert "drip_list_meters" in tools
    assert default.status_code == 404


async def test_sse_client_lists_tools_and_calls_one_against_the_sandbox(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(transport="sse"))
    async with serving(app) as base, sse_session(f"{base}/sse") as session:
        tools, meters = await exercise(session)
    assert tools >= WEBHOOK_TOOLS
    assert meters["meters"]


# --- bearer auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_bearer_token_is_required_for_mcp_but_not_for_health(settings: Settings, transport: str) -> None:
    app = build_http_app(settings, HttpOptions(transport=transport, auth_token=TOKEN))
    mcp_path = "/mcp" if transport == "streamable-http" else "/sse"
    async with serving(app) as base:
        async with httpx2.AsyncClient(timeout=5) as http:
            missing = await http.post(f"{base}{mcp_path}", json=initialize_body(), headers=MCP_HEADERS)
            wrong = await http.post(
                f"{base}{mcp_path}",
                json=initialize_body(),
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}x"},
            )
            messages = await http.post(f"{base}/messages/?session_id=00", json=initialize_body())
            health = await http.get(f"{base}/health")
        open_session = streamable_session if transport == "streamable-http" else sse_session
        async with open_session(f"{base}{mcp_path}", {"Authorization": f"Bearer {TOKEN}"}) as session:
            tools, _ = await exercise(session)
    for response in (missing, wrong, messages):
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHORIZED"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200
    assert "drip_list_meters" in tools


# --- Host / Origin (DNS rebinding) ---------------------------------------------------------------


async def test_foreign_host_gets_421_and_foreign_origin_gets_403(settings: Settings) -> None:
    app = build_http_app(
        settings, HttpOptions(allowed_hosts=("mcp.example.com",), allowed_origins=("https://app.example.com",))
    )
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
        url = f"{base}/mcp"

        async def post(**headers: str) -> httpx2.Response:
            response: httpx2.Response = await http.post(url, json=initialize_body(), headers={**MCP_HEADERS, **headers})
            return response

        foreign_host = await post(Host="evil.example:80")
        foreign_origin = await post(Origin="http://evil.example")
        bare_localhost = await post(Host="localhost")
        allowed_host = await post(Host="mcp.example.com")
        allowed_origin = await post(Origin="https://app.example.com")
        loopback_origin = await post(Origin=base)
    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403
    for ok in (bare_localhost, allowed_host, allowed_origin, loopback_origin):
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_host_and_origin_names_compare_case_insensitively(settings: Settings, transport: str) -> None:
    options = HttpOptions(
        transport=transport, allowed_hosts=("MCP.Example.com",), allowed_origins=("https://App.Example.com",)
    )
    app = build_http_app(settings, options)
    hosts = ["LOCALHOST", "LocalHost:8000", "[::1]", "[::1]:8000", "127.0.0.1", "mcp.EXAMPLE.com"]
    origins = ["HTTP://LocalHost:5173", "https://APP.example.COM", "http://[::1]"]
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:

        async def status(**headers: str) -> int:
            if transport == "sse":  # the SSE stream stays open: look at the status line only
                async with http.stream("GET", f"{base}/sse", headers=headers) as response:
                    return response.status_code
            reply = await http.post(f"{base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, **headers})
            return reply.status_code

        by_host = {host: await status(Host=host) for host in hosts}
        by_origin = {origin: await status(Origin=origin) for origin in origins}
        foreign = (await status(Host="EVIL.example"), await status(Origin="HTTP://EVIL.example"))
    assert by_host == dict.fromkeys(hosts, 200)
    assert by_origin == dict.fromkeys(origins, 200)
    assert foreign == (421, 403)


async def test_health_answers_any_host_but_tells_the_version_only_to_allowed_callers(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions())
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:

        async def health(**headers: str) -> tuple[int, Any]:
            response = await http.get(f"{base}/health", headers=headers)
            return response.status_code, response.json()

        foreign_host = await health(Host="evil.com")
        probe = await health(Host="10.0.3.7:8000")
        foreign_origin = await health(Origin="http://evil.com")
        upper = await health(Host="LOCALHOST:8000")
        plain = await health()
    for answer in (foreign_host, probe, foreign_origin):
        assert answer == (200, {"status": "ok"})
    for answer in (upper, plain):
        assert answer == (200, {"status": "ok", "version": __version__})


async def test_sse_checks_host_and_origin_too(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(transport="sse"))
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
        foreign_host = await http.get(f"{base}/sse", headers={"Host": "evil.example"})
        foreign_origin = await http.get(f"{base}/sse", headers={"Origin": "http://evil.example"})
    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403


# --- per-request keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "stateless"),
    [("streamable-http", False), ("streamable-http", True), ("sse", False)],
    ids=["streamable-stateful", "streamable-stateless", "sse"],
)
async def test_per_request_keys_give_each_client_its_own_tools_and_refusals(
    settings: Settings, transport: str, stateless: bool
) -> None:
    app = build_http_app(
        settings,
        HttpOptions(transport=transport, stateless=stateless, json_response=stateless, per_request_key=True),
    )
    open_session = streamable_session if transport == "streamable-http" else sse_session
    url_path = "/mcp" if transport == "streamable-http" else "/sse"
    seen: dict[str, dict[str, Any]] = {}

    async with serving(app) as base:

        async def tenant(key: str) -> None:
            async with open_session(f"{base}{url_path}", {"Authorization": f"Bearer {key}"}) as session:
                tools = {t.name for t in (await session.list_tools()).tools}
                webhook = await session.call_tool(
                    "drip_create_webhook", {"url": "http://127.0.0.1:9/hook", "events": ["charge.succeeded"]}
                )
                ping = structured(await session.call_tool("drip_ping", {}))
                seen[key] = {"tools": tools, "webhook": webhook, "ping": ping}

        async with anyio.create_task_group() as tg:
            tg.start_soon(tenant, PUBLIC_KEY)
            tg.start_soon(tenant, SECRET_KEY)

    public, secret = seen[PUBLIC_KEY], seen[SECRET_KEY]
    assert not public["tools"] & WEBHOOK_TOOLS
    assert "drip_list_meters" in public["tools"]
    assert secret["tools"] >= WEBHOOK_TOOLS
    assert public["webhook"].is_error
    assert structured(public["webhook"])["error"]["code"] == "PUBLIC_KEY_NOT_ALLOWED"
    assert not secret["webhook"].is_error, secret["webhook"]
    assert public["ping"]["key_type"] == "public"
    assert public["ping"]["key"] == ApiKey(PUBLIC_KEY).masked
    assert secret["ping"]["key_type"] == "secret"
    assert secret["ping"]["key"] == ApiKey(SECRET_KEY).masked


async def test_per_request_key_mode_rejects_missing_and_malformed_keys_with_401(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(per_request_key=True))
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
        missing = await http.post(f"{base}/mcp", json=initialize_body(), headers=MCP_HEADERS)
        malformed = await http.post(
            f"{base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, "Authorization": "Bearer xk_test_nope"}
        )
        good = await http.post(
            f"{base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, "Authorization": f"Bearer {PUBLIC_KEY}"}
        )
    assert missing.status_code == 401
    assert malformed.status_code == 401
    assert malformed.json()["code"] == "UNAUTHORIZED"
    assert "xk_test_nope" not in malformed.text
    assert good.status_code == 200


async def test_a_session_opened_with_one_key_is_not_usable_with_another(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(per_request_key=True, json_response=True))
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
        opened = await http.post(
            f"{base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, "Authorization": f"Bearer {SECRET_KEY}"}
        )
        session_id = opened.headers["mcp-session-id"]
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
        hijack = await http.post(
            f"{base}/mcp",
            json=call,
            headers={
                **MCP_HEADERS,
                "Authorization": f"Bearer {PUBLIC_KEY}",
                "Mcp-Session-Id": session_id,
                "Mcp-Protocol-Version": "2025-11-25",
            },
        )
    assert opened.status_code == 200
    assert hijack.status_code == 404


async def test_sse_session_is_bound_to_the_key_that_opened_it(settings: Settings) -> None:
    app = build_http_app(settings, HttpOptions(transport="sse", per_request_key=True))
    endpoints: list[str] = []
    async with (
        serving(app) as base,
        sse_client(
            f"{base}/sse",
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
            timeout=5,
            on_session_created=endpoints.append,
        ) as (read, write),
        ClientSession(read, write, read_timeout_seconds=10) as session,
    ):
        await session.initialize()
        assert endpoints, "the SSE client reported no session"
        async with httpx2.AsyncClient(timeout=5) as http:
            other = await http.post(
                f"{base}/messages/?session_id={endpoints[0]}",
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}},
                headers={"Authorization": f"Bearer {PUBLIC_KEY}"},
            )
        tools = {t.name for t in (await session.list_tools()).tools}
    assert other.status_code == 404
    assert tools >= WEBHOOK_TOOLS


async def test_hosted_tenants_share_one_pool_but_each_request_carries_its_own_key() -> None:
    seen: list[tuple[str, str]] = []

    def drip_api(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.path, request.headers.get("authorization", "")))
        return httpx2.Response(200, json={"status": "healthy"})

    hosted = Settings(api_key=None, base_url="https://drip.test/v1")
    app = build_http_app(
        hosted,
        HttpOptions(per_request_key=True, stateless=True, json_response=True),
        transport=httpx2.MockTransport(drip_api),
    )
    pings: dict[str, dict[str, Any]] = {}
    async with serving(app) as base:

        async def tenant(key: str) -> None:
            async with streamable_session(f"{base}/mcp", {"Authorization": f"Bearer {key}"}) as session:
                pings[key] = structured(await session.call_tool("drip_ping", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(tenant, PUBLIC_KEY)
            tg.start_soon(tenant, SECRET_KEY)
    assert pings[PUBLIC_KEY]["ok"]
    assert pings[PUBLIC_KEY]["key_type"] == "public"
    assert pings[SECRET_KEY]["ok"]
    assert pings[SECRET_KEY]["key_type"] == "secret"
    # drip_ping also makes an authenticated read (GET /customers) with the same key.
    assert sorted(s for s in seen if s[0] == "/health") == [
        ("/health", f"Bearer {PUBLIC_KEY}"),
        ("/health", f"Bearer {SECRET_KEY}"),
    ]
    assert sorted(seen) == sorted({(p, a) for p, _ in seen for a in (f"Bearer {PUBLIC_KEY}", f"Bearer {SECRET_KEY}")})


@pytest.mark.parametrize("transport", ["streamable-http", "streamable-http-stateless", "sse"])
async def test_sdk_runs_tool_handlers_in_the_posting_requests_contextvars(transport: str) -> None:
    """The guarantee per-request keys rely on: a contextvar set by ASGI middleware on the request that
    carries a tools/call is what the handler sees (for SSE: the POST /messages/, not the GET /sse)."""
    seen_by_middleware: contextvars.ContextVar[str] = contextvars.ContextVar("seen_by_middleware", default="unset")
    server = MCPServer("probe", version="1")

    @server.tool()
    async def where() -> str:
        return seen_by_middleware.get()

    if transport == "sse":
        inner: ASGIApp = server.sse_app()
    else:
        inner = server.streamable_http_app(stateless_http=transport.endswith("stateless"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        token = seen_by_middleware.set(f"{scope['method']} {scope['path']}")
        try:
            await inner(scope, receive, send)
        finally:
            seen_by_middleware.reset(token)

    open_session = sse_session if transport == "sse" else streamable_session
    async with serving(app) as base, open_session(f"{base}/{'sse' if transport == 'sse' else 'mcp'}") as session:
        result = await session.call_tool("where", {})
    assert result.content[0].type == "text"
    assert result.content[0].text == ("POST /messages/" if transport == "sse" else "POST /mcp")


def test_tenant_pool_refuses_a_live_tenant_key_over_plain_http_to_a_remote_host() -> None:
    pool = TenantPool(Settings(api_key=None, base_url="http://api.example.test/v1"), httpx2.AsyncClient())
    with pytest.raises(ConfigurationError):
        pool.client_for(ApiKey("pk_live_tenant0xxxxxxxx"))
    assert len(pool) == 0


def test_tenant_pool_is_a_bounded_lru_keyed_by_key_hash(settings: Settings) -> None:
    pool = TenantPool(settings, httpx2.AsyncClient(), capacity=2)
    keys = [ApiKey(f"pk_test_tenant{i}xxxxxxxx") for i in range(3)]
    first = pool.client_for(keys[0])
    pool.client_for(keys[1])
    assert pool.client_for(keys[0]) is first  # reused, and now most recently used
    pool.client_for(keys[2])  # evicts keys[1], the least recently used
    assert len(pool) == 2
    assert pool.fingerprints() == [keys[0].fingerprint, keys[2].fingerprint]
    assert all(k.reveal() not in fp for k in keys for fp in pool.fingerprints())
    with pytest.raises(ConfigurationError, match="test keys only"):
        pool.client_for(ApiKey("sk_live_abcdefgh12345678"))


# --- /health -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [HttpOptions(auth_token=TOKEN), HttpOptions(per_request_key=True), HttpOptions(transport="sse")],
    ids=["auth-token", "per-request-key", "sse"],
)
async def test_health_is_unauthenticated_and_reveals_nothing(settings: Settings, options: HttpOptions) -> None:
    app = build_http_app(settings, options)
    async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
        response = await http.get(f"{base}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}
    for secret in (TOKEN, SECRET_KEY, "transport", str(settings.sandbox_db)):
        assert secret not in response.text


# --- configuration ---------------------------------------------------------------------------------


def test_binding_a_non_loopback_host_without_auth_is_refused(settings: Settings) -> None:
    options = HttpOptions(host="0.0.0.0")  # noqa: S104 - the refusal is what is tested
    with pytest.raises(ConfigurationError, match="--auth-token"):
        build_http_app(settings, options)
    with pytest.raises(ConfigurationError, match="--per-request-key"):
        serve_http(settings, options)
    build_http_app(settings, HttpOptions(host="0.0.0.0", auth_token=TOKEN))  # noqa: S104
    build_http_app(settings, HttpOptions(host="0.0.0.0", per_request_key=True))  # noqa: S104


def test_cli_exits_2_with_a_fix_when_binding_non_loopback_without_auth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--sandbox", "--sandbox-db", str(tmp_path / "s.db"), "--transport", "sse", "--host", "0.0.0.0"])  # noqa: S104
    err = capsys.readouterr().err
    assert code == 2
    assert "non-loopback" in err
    assert "--auth-token" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (HttpOptions(workers=2), "--stateless"),
        (HttpOptions(workers=2, transport="sse"), "--stateless"),
        (HttpOptions(port=70000), "--port"),
        (HttpOptions(port=-1), "--port"),
        (HttpOptions(transport="sse", stateless=True), "streamable-http only"),
        (HttpOptions(path="mcp"), "--path"),
        (HttpOptions(path="/health"), "--path"),
        (HttpOptions(auth_token=TOKEN, per_request_key=True), "choose one"),
        (HttpOptions(workers=2, stateless=True, port=0), "explicit --port"),
    ],
)
def test_inconsistent_options_are_configuration_errors(options: HttpOptions, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        options.validate()


def test_workers_need_stateless_and_then_pass_validation() -> None:
    HttpOptions(workers=4, stateless=True, json_response=True).validate()


def test_auth_token_falls_back_to_the_environment() -> None:
    args = build_parser().parse_args(["serve", "--transport", "streamable-http"])
    from_env = HttpOptions.from_args(args, {AUTH_TOKEN_ENV: TOKEN})
    flag_args = build_parser().parse_args(["serve", "--auth-token", "from-flag"])
    from_flag = HttpOptions.from_args(flag_args, {AUTH_TOKEN_ENV: TOKEN})
    assert from_env.auth_token == TOKEN
    assert from_flag.auth_token == "from-flag"
    assert TOKEN not in repr(from_env)
    assert HttpOptions.from_args(args, {}).auth_token is None


def test_worker_config_round_trips_without_secrets_in_the_json(settings: Settings) -> None:
    options = HttpOptions(
        workers=3, stateless=True, json_response=True, auth_token=TOKEN, allowed_hosts=("mcp.example.com",)
    )
    env: dict[str, str] = {}
    _export_config(settings, options, env)
    blob = env["DRIP_MCP_HTTP_CONFIG"]
    assert SECRET_KEY not in blob
    assert TOKEN not in blob
    restored_settings, restored_options = _import_config(WorkerEnvironment.read(env))
    assert restored_settings == settings
    assert restored_options == options


# --- processes: python -m drip_mcp ---------------------------------------------------------------


def _child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(
        DRIP_MCP_STATE_DIR=str(tmp_path / "state"),
        DRIP_SANDBOX_DB=str(tmp_path / "proc.db"),
        DRIP_API_KEY=SECRET_KEY,
        DRIP_SURFACE="full",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        **extra,
    )
    return env


async def test_python_m_drip_mcp_serves_sse(tmp_path: Path) -> None:
    async with drip_mcp_process("--sandbox", "--transport", "sse", env=_child_env(tmp_path)) as (proc, port, _):
        async with sse_session(f"http://127.0.0.1:{port}/sse") as session:
            tools, meters = await exercise(session)
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            code = await proc.wait()
    assert "drip_list_meters" in tools
    assert meters["meters"]
    assert code == 0


def _usage_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


async def test_sigterm_lets_the_in_flight_tool_call_finish_then_exits_0(tmp_path: Path) -> None:
    args = ("--sandbox", "--transport", "streamable-http", "--stateless", "--json-response")
    env = _child_env(tmp_path)
    db = Path(env["DRIP_SANDBOX_DB"])
    async with (
        drip_mcp_process(*args, env=env) as (proc, port, lines),
        httpx2.AsyncClient(timeout=30, headers=MCP_HEADERS) as http,
    ):
        url = f"http://127.0.0.1:{port}/mcp"

        async def call(rid: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            body = {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
            response = await http.post(url, json=body, headers={"Mcp-Protocol-Version": "2025-11-25"})
            assert response.status_code == 200, response.text
            return dict(json.loads(response.text))

        created = await call(1, "drip_create_customer", {"external_customer_id": "sigterm-test"})
        customer_id = created["result"]["structuredContent"]["customer"]["id"]
        events = [{"customer_id": customer_id, "meter": "tokens", "quantity": 1} for _ in range(500)]
        replies: list[dict[str, Any]] = []

        async def slow_call() -> None:
            replies.append(await call(2, "drip_track_usage_batch", {"events": events}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            with anyio.fail_after(15):
                # Bounded poll of another process's SQLite file (no event to wait on): rows mean the call is running.
                while _usage_rows(db) == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            in_flight = not replies
            proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            code = await proc.wait()
    assert in_flight, "the call finished before SIGTERM: make it slower"
    result = replies[0]["result"]
    assert not result.get("isError"), result
    assert result["structuredContent"]["recorded"] == 500
    assert code == 0, lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_workers_serve_stateless_json_with_the_token_from_the_parent(tmp_path: Path) -> None:
    port = _free_port()
    args = ("--sandbox", "--transport", "streamable-http", "--stateless", "--json-response", "--workers", "2")
    env = _child_env(tmp_path, **{AUTH_TOKEN_ENV: TOKEN})
    process = await anyio.open_process(
        [sys.executable, "-m", "drip_mcp", *args, "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "drip_ping", "arguments": {}}}
    headers = {**MCP_HEADERS, "Mcp-Protocol-Version": "2025-11-25"}
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            with anyio.fail_after(20):
                while True:  # bounded readiness poll: workers announce nothing on their own
                    try:
                        if (await http.get(f"{url}/health")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.05)
            denied = await http.post(f"{url}/mcp", json=body, headers=headers)
            replies = [
                await http.post(f"{url}/mcp", json=body, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
                for _ in range(4)
            ]
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5):
                await process.wait()
        await process.aclose()
    assert denied.status_code == 401
    for reply in replies:
        assert reply.status_code == 200, reply.text
        ping = reply.json()["result"]["structuredContent"]
        assert ping["sandbox"] is True
        assert ping["key_type"] == "secret"
    assert code == 0
