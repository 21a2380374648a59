"""Per-tenant session limits: one key cannot fill the session table; keys Drip refuses open no session.
Also the workers' listening socket (TCP_NODELAY)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest
from transport_helpers import MCP_HEADERS, initialize_body, serving, sse_session, streamable_session

from drip_mcp.api.client import DripClient
from drip_mcp.hosts import bind_socket
from drip_mcp.http import HttpOptions, build_http_app
from drip_mcp.http.sessions import KeyCheck, TenantSessions
from drip_mcp.keys import ApiKey
from drip_mcp.settings import Settings

pytestmark = pytest.mark.anyio

KEY_A = "sk_test_sessionsTenantA1"
KEY_B = "pk_test_sessionsTenantB2"


async def open_raw(http: httpx2.AsyncClient, base: str, key: str) -> httpx2.Response:
    return await http.post(
        f"{base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, "Authorization": f"Bearer {key}"}
    )


async def test_a_tenant_at_its_session_cap_is_refused_while_other_tenants_still_open_sessions(tmp_path: Path) -> None:
    settings = Settings.load(
        {}, api_key="", require_key=False, sandbox=True, sandbox_db=tmp_path / "s.db", max_sessions_per_tenant=2
    )
    app = build_http_app(settings, HttpOptions(per_request_key=True))
    headers = {"Authorization": f"Bearer {KEY_A}"}
    async with serving(app) as base, httpx2.AsyncClient(timeout=10) as http:
        async with streamable_session(f"{base}/mcp", headers), streamable_session(f"{base}/mcp", headers):
            refused = await open_raw(http, base, KEY_A)
            other = await open_raw(http, base, KEY_B)
        async with streamable_session(f"{base}/mcp", headers) as again:  # the two closed (DELETE): room again
            ping = await again.call_tool("drip_ping", {})

    assert refused.status_code == 429
    assert refused.json()["code"] == "TOO_MANY_SESSIONS"
    assert other.status_code == 200
    assert not ping.is_error


async def test_open_sse_streams_count_against_their_tenants_cap(tmp_path: Path) -> None:
    settings = Settings.load(
        {}, api_key="", require_key=False, sandbox=True, sandbox_db=tmp_path / "s.db", max_sessions_per_tenant=1
    )
    app = build_http_app(settings, HttpOptions(transport="sse", per_request_key=True))
    headers = {"Authorization": f"Bearer {KEY_A}"}
    async with serving(app) as base, httpx2.AsyncClient(timeout=10) as http:
        async with sse_session(f"{base}/sse", headers) as held:
            refused = await http.get(f"{base}/sse", headers=headers)
            async with sse_session(f"{base}/sse", {"Authorization": f"Bearer {KEY_B}"}) as other:
                other_ping = await other.call_tool("drip_ping", {})
            held_ping = await held.call_tool("drip_ping", {})
        async with sse_session(f"{base}/sse", headers) as again:  # the stream ended: room again
            again_ping = await again.call_tool("drip_ping", {})

    assert refused.status_code == 429
    assert refused.json()["code"] == "TOO_MANY_SESSIONS"
    assert not other_ping.is_error
    assert not held_ping.is_error
    assert not again_ping.is_error


def test_idle_sessions_stop_counting_against_their_tenant() -> None:
    now = [0.0]
    sessions = TenantSessions(limit=1, idle_s=60, clock=lambda: now[0])
    sessions.opened("a", "s1")
    assert not sessions.admits("a")
    assert sessions.admits("b")
    now[0] = 30
    sessions.touched("a", "s1")
    now[0] = 80
    assert not sessions.admits("a")  # touched at 30: still live
    now[0] = 91
    assert sessions.admits("a")


class Counting:
    """A Drip API that answers every request with `status` and counts them."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if self.status == 200:
            return httpx2.Response(200, json={"data": [], "count": 0})
        return httpx2.Response(self.status, json={"error": "invalid key", "code": "UNAUTHORIZED"})


@pytest.mark.parametrize(("status", "accepted"), [(200, True), (401, False)])
async def test_a_key_is_checked_with_drip_once_and_the_answer_cached(status: int, accepted: bool) -> None:
    drip, check = Counting(status), KeyCheck(ttl_s=300)
    async with DripClient(ApiKey(KEY_A), transport=httpx2.MockTransport(drip)) as client:
        answers = [await check.accepts(client), await check.accepts(client)]
    assert answers == [accepted, accepted]
    assert drip.requests == 1


def test_the_workers_listening_socket_has_tcp_nodelay_and_so_do_its_connections() -> None:
    listener = bind_socket("127.0.0.1", 0)
    try:
        listener.listen()
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay
        assert listener.get_inheritable()
    finally:
        listener.close()
