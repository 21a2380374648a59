"""OAuth 2.1 resource-server mode over real loopback sockets: a real JWKS, signed JWTs, MCP clients of both eras."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from server_fixtures import RecordingTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from transport_helpers import CALL_TIMEOUT_S, MCP_HEADERS, initialize_body, serving, sse_session, streamable_session

from drip_mcp.cli import build_parser
from drip_mcp.errors import ConfigurationError
from drip_mcp.http import HttpOptions, build_http_app
from drip_mcp.http.oauth import SCOPES, allowed_by_scopes, required_scope
from drip_mcp.keys import KeyType
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.settings import OAUTH_AUDIENCE_ENV, OAUTH_ISSUER_ENV, OAUTH_JWKS_URL_ENV, Settings
from drip_mcp.tools import OPERATIONS, TOOLS, TOOLS_BY_NAME, ToolSpec

pytestmark = pytest.mark.anyio

SECRET_KEY = "sk_test_oauthSECRET0042"
PUBLIC_KEY = "pk_test_oauthPUBLIC0042"
AUDIENCE = "https://mcp.example.test/mcp"
METADATA_URL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
ERAS = ("auto", "legacy")
# One tool each scope may call with no setup, and the scope it belongs to (the rule restated, as anchors).
ANCHORS = {
    "drip:read": "drip_list_meters",
    "drip:write": "drip_create_customer",
    "drip:charge": "drip_charge",
    "drip:admin": "drip_list_webhooks",
}


def expected_scope(spec: ToolSpec[Any, Any]) -> str:
    if spec.scope is KeyType.SECRET:
        return "drip:admin"
    if spec.moves_money:
        return "drip:charge"
    return "drip:read" if spec.read_only else "drip:write"


# --- a real identity provider on loopback --------------------------------------------------------


@dataclass
class IdentityProvider:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks.json``; signs tokens with its keys."""

    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)  # kid -> (private key, alg)
    published: list[dict[str, Any]] = field(default_factory=list)
    jwks_hits: int = 0
    discovery_hits: int = 0
    issuer: str = ""

    def add_key(self, kid: str, *, alg: str = "RS256", publish: bool = True) -> None:
        if alg.startswith("ES"):
            private: Any = ec.generate_private_key(ec.SECP256R1())
            public = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        self.keys[kid] = (private, alg)
        if publish:
            self.published.append({**public, "kid": kid, "use": "sig", "alg": alg})

    def token(self, scopes: str = "drip:read", *, kid: str = "k1", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-alice",
            "azp": "test-client",
            "scope": scopes,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        signer = overrides.pop("signer", None)
        claims.pop("signer", None)
        private, alg = self.keys[kid] if signer is None else (signer, "RS256")
        return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            self.discovery_hits += 1
            base = str(request.base_url).rstrip("/")
            return JSONResponse({"issuer": base, "jwks_uri": f"{base}/jwks.json"})

        async def jwks(request: Request) -> JSONResponse:
            self.jwks_hits += 1
            return JSONResponse({"keys": list(self.published)})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
                Route("/jwks.json", jwks, methods=["GET"]),
            ]
        )


@dataclass
class Stack:
    idp: IdentityProvider
    base: str
    drip: RecordingTransport

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def oauth_stack(
    tmp_path: Path,
    *,
    transport: str = "streamable-http",
    api_key: str = SECRET_KEY,
    surface: str = "full",
    max_sessions_per_tenant: int = 100,
    **extra: Any,
) -> AsyncIterator[Stack]:
    """IdP on loopback → drip-mcp (OAuth mode, the sandbox behind a recording transport) on loopback.

    The ``full`` surface lists every operation, so a scope's tool list can be compared whole.
    """
    idp = IdentityProvider()
    idp.add_key("k1")
    db = tmp_path / "s.db"
    settings = Settings.load(
        {"DRIP_MCP_STATE_DIR": str(tmp_path / "state")},
        api_key=api_key,
        sandbox=True,
        sandbox_db=db,
        surface=surface,
        max_sessions_per_tenant=max_sessions_per_tenant,
    )
    async with serving(idp.app()) as issuer, Sandbox(SandboxConfig(db_path=db)) as sandbox:
        idp.issuer = issuer
        drip = RecordingTransport(sandbox.transport())
        options = HttpOptions(transport=transport, oauth_issuer=issuer, oauth_audience=AUDIENCE, **extra)
        app = build_http_app(settings, options, transport=drip)
        async with serving(app) as base:
            yield Stack(idp, base, drip)


@asynccontextmanager
async def mcp_session(url: str, headers: Mapping[str, str], era: str) -> AsyncIterator[Any]:
    """A 2026-era `Client` (``auto`` negotiates 2026-07-28) or a handshake-era `ClientSession`."""
    if era == "legacy":
        async with streamable_session(url, headers) as session:
            yield session
        return
    http = httpx2.AsyncClient(headers=dict(headers), timeout=httpx2.Timeout(CALL_TIMEOUT_S))
    async with http, Client(streamable_http_client(url, http_client=http), mode=era) as client:
        assert client.protocol_version == "2026-07-28"
        yield client


def error_code(result: CallToolResult) -> str:
    assert result.is_error, result
    assert result.structured_content is None  # the error is the JSON of the text block
    return str(json.loads(result.content[0].text)["error"]["code"])


# --- the pure rule -------------------------------------------------------------------------------


def test_every_tool_needs_exactly_one_scope_by_its_declaration() -> None:
    for spec in TOOLS:
        assert required_scope(spec) == expected_scope(spec), spec.name
        assert [s for s in SCOPES if allowed_by_scopes(spec, {s})] == [expected_scope(spec)], spec.name
        assert not allowed_by_scopes(spec, set())
    for scope, name in ANCHORS.items():
        assert required_scope(TOOLS_BY_NAME[name]) == scope


# --- metadata and challenges ---------------------------------------------------------------------


async def test_protected_resource_metadata_is_public_at_the_root_and_the_mcp_path(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        root = await http.get(f"{stack.base}/.well-known/oauth-protected-resource")
        variant = await http.get(f"{stack.base}/.well-known/oauth-protected-resource/mcp")
        foreign_host = await http.get(
            f"{stack.base}/.well-known/oauth-protected-resource/mcp", headers={"Host": "evil.example"}
        )
        foreign_origin = await http.get(
            f"{stack.base}/.well-known/oauth-protected-resource", headers={"Origin": "https://evil.example"}
        )
        issuer = stack.idp.issuer
    for response in (root, variant):
        assert response.status_code == 200
        assert response.json() == {
            "resource": AUDIENCE,
            "authorization_servers": [issuer],
            "scopes_supported": ["drip:read", "drip:write", "drip:charge", "drip:admin"],
            "bearer_methods_supported": ["header"],
            "resource_name": "drip-mcp",
        }
    assert foreign_host.status_code == 421
    assert foreign_origin.status_code == 403


async def test_metadata_names_the_request_url_when_the_audience_is_not_a_url(tmp_path: Path) -> None:
    # A non-URL audience, such as an Auth0 API identifier "drip-mcp".
    idp = IdentityProvider()
    idp.add_key("k1")
    db = tmp_path / "s2.db"
    settings = Settings.load({}, api_key=SECRET_KEY, sandbox=True, sandbox_db=db)
    async with serving(idp.app()) as issuer:
        idp.issuer = issuer
        app = build_http_app(settings, HttpOptions(oauth_issuer=issuer, oauth_audience="drip-mcp"))
        async with serving(app) as base, httpx2.AsyncClient(timeout=5) as http:
            metadata = await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")
            missing = await http.post(f"{base}/mcp", json=initialize_body(), headers=MCP_HEADERS)
    assert metadata.json()["resource"] == f"{base}/mcp"
    assert missing.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
    )


async def test_a_request_without_a_token_gets_401_naming_the_metadata(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        missing = await http.post(f"{stack.base}/mcp", json=initialize_body(), headers=MCP_HEADERS)
        health = await http.get(f"{stack.base}/health")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA_URL}"'
    assert missing.json()["code"] == "UNAUTHORIZED"
    assert health.status_code == 200
    assert stack.idp.jwks_hits == 0  # nothing to check, nothing fetched
    assert stack.drip.sent == []


@pytest.mark.parametrize(
    "case", ["bad-signature", "expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-subject", "garbage"]
)
async def test_an_invalid_token_gets_401_invalid_token(tmp_path: Path, case: str) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        idp = stack.idp
        now = int(time.time())
        token = {
            "bad-signature": lambda: idp.token(signer=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "expired": lambda: idp.token(iat=now - 3600, exp=now - 600),
            "not-yet-valid": lambda: idp.token(nbf=now + 600),
            "wrong-audience": lambda: idp.token(aud="https://other.example.test/mcp"),
            "wrong-issuer": lambda: idp.token(iss="https://other-idp.example.test"),
            "no-subject": lambda: idp.token(sub=""),
            "garbage": lambda: "not.a.jwt",
        }[case]()
        response = await http.post(
            f"{stack.base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, **stack.bearer(token)}
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (f'Bearer resource_metadata="{METADATA_URL}", error="invalid_token"')
    assert stack.drip.sent == []


async def test_an_hs256_token_signed_with_a_public_value_is_refused(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        claims = jwt.decode(stack.idp.token(), options={"verify_signature": False})
        forged = jwt.encode(
            claims, "k1-public-modulus-as-secret-0123456789abcdef", algorithm="HS256", headers={"kid": "k1"}
        )
        response = await http.post(
            f"{stack.base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, **stack.bearer(forged)}
        )
    assert response.status_code == 401


# --- scopes onto tools ---------------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("scope", SCOPES)
async def test_each_scope_lists_and_calls_exactly_its_tools(tmp_path: Path, scope: str, era: str) -> None:
    async with oauth_stack(tmp_path) as stack:
        seed = stack.bearer(stack.idp.token("drip:read drip:write", sub="seeder"))
        async with mcp_session(f"{stack.base}/mcp", seed, era) as session:
            created = await session.call_tool("drip_create_customer", {"external_customer_id": "seeded"})
            assert not created.is_error, created
            customer = created.structured_content
            meters = (await session.call_tool("drip_list_meters", {})).structured_content
        assert customer is not None
        assert meters is not None
        in_scope_args: dict[str, dict[str, Any]] = {
            "drip:write": {"external_customer_id": "in-scope"},
            "drip:charge": {
                "customer_id": customer["customer"]["id"],
                "meter": meters["meters"][0]["meter"],
                "quantity": 1,
                "dry_run": True,
            },
        }
        async with mcp_session(f"{stack.base}/mcp", stack.bearer(stack.idp.token(scope)), era) as session:
            listed = {t.name for t in (await session.list_tools()).tools}
            sent_before = len(stack.drip.sent)
            refused = {name: error_code(await session.call_tool(name, {})) for s, name in ANCHORS.items() if s != scope}
            sent_while_refusing = len(stack.drip.sent) - sent_before
            allowed = await session.call_tool(ANCHORS[scope], in_scope_args.get(scope, {}))
    assert listed == {spec.name for spec in OPERATIONS if expected_scope(spec) == scope}
    assert ANCHORS[scope] in listed
    assert refused == dict.fromkeys(refused, "INSUFFICIENT_SCOPE")
    assert sent_while_refusing == 0
    assert not allowed.is_error, allowed


async def test_admin_scope_lists_nothing_when_the_servers_key_is_public(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path, api_key=PUBLIC_KEY) as stack:
        headers = stack.bearer(stack.idp.token("drip:admin drip:read"))
        async with mcp_session(f"{stack.base}/mcp", headers, "auto") as session:
            listed = {t.name for t in (await session.list_tools()).tools}
            webhook = await session.call_tool("drip_list_webhooks", {})
    assert listed == {spec.name for spec in OPERATIONS if expected_scope(spec) == "drip:read"}
    assert error_code(webhook) == "PUBLIC_KEY_NOT_ALLOWED"


async def test_drip_ping_reports_only_the_tools_the_token_allows(tmp_path: Path) -> None:
    async with (
        oauth_stack(tmp_path) as stack,
        mcp_session(f"{stack.base}/mcp", stack.bearer(stack.idp.token("drip:read")), "auto") as session,
    ):
        ping = (await session.call_tool("drip_ping", {})).structured_content
    assert ping is not None
    assert set(ping["tools"]) == {spec.name for spec in OPERATIONS if expected_scope(spec) == "drip:read"}


async def test_sse_transport_takes_oauth_tokens_too(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path, transport="sse") as stack, httpx2.AsyncClient(timeout=5) as http:
        missing = await http.get(f"{stack.base}/sse")
        variant = await http.get(f"{stack.base}/.well-known/oauth-protected-resource/sse")
        async with sse_session(f"{stack.base}/sse", stack.bearer(stack.idp.token("drip:charge"))) as session:
            listed = {t.name for t in (await session.list_tools()).tools}
    assert missing.status_code == 401
    assert variant.status_code == 200
    assert listed == {"drip_charge", "drip_charge_async", "drip_refund_charge"}  # the money-moving tools


# --- keys and tenancy ----------------------------------------------------------------------------


async def test_an_unknown_kid_refreshes_the_key_set_once(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        idp = stack.idp

        async def status(token: str) -> int:
            response = await http.post(
                f"{stack.base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, **stack.bearer(token)}
            )
            return response.status_code

        first = await status(idp.token())
        again = await status(idp.token())
        hits_after_first = (idp.discovery_hits, idp.jwks_hits)
        idp.add_key("k2", alg="ES256")  # the provider rotates: a new key the cache has not seen
        rotated = await status(idp.token(kid="k2"))
        hits_after_rotation = idp.jwks_hits
        idp.add_key("k3", publish=False)  # a kid nobody publishes, straight after a refresh
        unknown = await status(idp.token(kid="k3"))
    assert (first, again) == (200, 200)
    assert hits_after_first == (1, 1)
    assert rotated == 200
    assert hits_after_rotation == 2
    assert unknown == 401
    assert idp.jwks_hits == 2  # within the cooldown: no refetch for junk kids


async def test_a_session_is_bound_to_its_token_subject(tmp_path: Path) -> None:
    async with oauth_stack(tmp_path) as stack, httpx2.AsyncClient(timeout=5) as http:
        alice = stack.bearer(stack.idp.token(sub="user-alice"))
        bob = stack.bearer(stack.idp.token(sub="user-bob"))
        opened = await http.post(f"{stack.base}/mcp", json=initialize_body(), headers={**MCP_HEADERS, **alice})
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        as_bob = await http.post(f"{stack.base}/mcp", json=listing, headers={**MCP_HEADERS, **bob, **session})
        alice_again = stack.bearer(stack.idp.token(sub="user-alice"))
        as_alice = await http.post(f"{stack.base}/mcp", json=listing, headers={**MCP_HEADERS, **alice_again, **session})
    assert opened.status_code == 200
    assert as_bob.status_code == 404
    assert as_alice.status_code in (200, 202)


async def test_the_session_cap_counts_each_token_subject_not_the_client_app(tmp_path: Path) -> None:
    """Alice and Bob sign in through the same client app (azp): Alice's cap is hers alone."""
    async with oauth_stack(tmp_path, max_sessions_per_tenant=1) as stack, httpx2.AsyncClient(timeout=5) as http:

        async def opening(subject: str) -> int:
            headers = {**MCP_HEADERS, **stack.bearer(stack.idp.token(sub=subject))}
            return (await http.post(f"{stack.base}/mcp", json=initialize_body(), headers=headers)).status_code

        alice_first, alice_second, bob_first = (
            await opening("user-alice"),
            await opening("user-alice"),
            await opening("user-bob"),
        )
    assert (alice_first, alice_second, bob_first) == (200, 429, 200)


# --- options -------------------------------------------------------------------------------------


def test_oauth_flags_beat_the_environment_and_count_as_authentication() -> None:
    wildcard = "0.0.0.0"  # noqa: S104 - a flag value, nothing binds
    flags = [
        "serve",
        "--transport",
        "streamable-http",
        "--host",
        wildcard,
        "--oauth-issuer",
        "https://idp.example.test/",
    ]
    args = build_parser().parse_args(flags)
    env = {OAUTH_ISSUER_ENV: "https://ignored.example.test", OAUTH_AUDIENCE_ENV: AUDIENCE, OAUTH_JWKS_URL_ENV: ""}
    options = HttpOptions.from_args(args, env)
    options.validate()  # non-loopback is fine: OAuth authenticates
    assert (options.oauth_issuer, options.oauth_audience, options.oauth_jwks_url) == (
        "https://idp.example.test/",
        AUDIENCE,
        None,
    )


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (HttpOptions(oauth_issuer="https://idp.example.test"), "--oauth-audience"),
        (HttpOptions(oauth_audience=AUDIENCE), "--oauth-issuer"),
        (HttpOptions(oauth_issuer="http://idp.example.test", oauth_audience=AUDIENCE), "https://"),
        (
            HttpOptions(oauth_issuer="https://idp.example.test", oauth_audience=AUDIENCE, oauth_jwks_url="ftp://x"),
            "--oauth-jwks-url",
        ),
        (
            HttpOptions(oauth_issuer="https://idp.example.test", oauth_audience=AUDIENCE, auth_token="t" * 32),
            "--auth-token",
        ),
        (
            HttpOptions(oauth_issuer="https://idp.example.test", oauth_audience=AUDIENCE, per_request_key=True),
            "--per-request-key",
        ),
    ],
)
def test_inconsistent_oauth_options_are_refused(options: HttpOptions, names: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        options.validate()
    assert names in str(caught.value)


@pytest.mark.parametrize("era", ["auto", "legacy"])
async def test_on_the_core_surface_the_catalogue_tools_follow_the_tokens_scopes(tmp_path: Path, era: str) -> None:
    """drip:read alone: drip_call_operation is annotated read-only, finds and calls only reads."""
    async with oauth_stack(tmp_path, surface="core") as stack:
        headers = stack.bearer(stack.idp.token("drip:read"))
        async with mcp_session(f"{stack.base}/mcp", headers, era) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            found = await session.call_tool("drip_find_operations", {"limit": 20})
            sent_before = len(stack.drip.sent)
            write = await session.call_tool(
                "drip_call_operation",
                {"operation": "drip_track_usage", "arguments": {"customer_id": "c", "meter": "tokens", "quantity": 1}},
            )
            sent_by_write = len(stack.drip.sent) - sent_before
            read = await session.call_tool("drip_call_operation", {"operation": "drip_list_meters", "arguments": {}})
    annotations = tools["drip_call_operation"].annotations
    assert annotations is not None
    assert (annotations.read_only_hint, annotations.destructive_hint) == (True, False)
    assert "drip_track_usage" not in tools
    assert found.structured_content is not None
    assert all(op["read_only"] for op in found.structured_content["operations"])
    assert error_code(write) == "INSUFFICIENT_SCOPE"
    assert sent_by_write == 0
    assert not read.is_error, read


@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_each_token_subject_is_its_own_tenant_with_its_own_ledger(tmp_path: Path, era: str) -> None:
    """Under OAuth every user shares the server's Drip key; the token subject, not the key, owns the state."""
    async with oauth_stack(tmp_path) as stack:
        url = f"{stack.base}/mcp"
        alice = stack.bearer(stack.idp.token("drip:write drip:charge drip:read", sub="user-alice"))
        bob = stack.bearer(stack.idp.token("drip:read", sub="user-bob"))
        async with mcp_session(url, alice, era) as session:
            created = await session.call_tool("drip_create_customer", {"external_customer_id": "tenant-a"})
            customer = created.structured_content["customer"]["id"]
            charged = await session.call_tool(
                "drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 1}
            )
            alice_summary = (await session.call_tool("drip_session_summary", {})).structured_content
        async with mcp_session(url, bob, era) as session:
            bob_summary = (await session.call_tool("drip_session_summary", {})).structured_content
    assert not charged.is_error, charged
    assert [e["outcome"] for e in alice_summary["entries"]] == ["charged"]
    assert bob_summary["entries"] == []
