"""OAuth 2.1 resource-server mode for hosted HTTP: JWT access tokens from the operator's identity provider.

``--oauth-issuer URL --oauth-audience AUD`` (optionally ``--oauth-jwks-url``) makes
drip-mcp an OAuth 2.1 resource server (MCP authorization, RFC 9728, RFC 8707):

* **Metadata.** `metadata_routes` serves RFC 9728 protected-resource metadata at
  ``/.well-known/oauth-protected-resource`` and its path variant for the MCP
  endpoint (``/.well-known/oauth-protected-resource/mcp``): the issuer as the
  authorization server, the resource, `SCOPES` and ``bearer_methods_supported``.
  Public, but behind the same Host/Origin allow-list as ``/mcp``.
* **Tokens.** `OAuthMiddleware` needs ``Authorization: Bearer <JWT>`` on everything
  else but ``/health``. `JwtVerifier` (the SDK's `TokenVerifier` protocol) checks the
  signature against the issuer's JWKS (`JwksCache`: found through
  ``/.well-known/openid-configuration`` → ``jwks_uri`` unless given, fetched with
  httpx2 under `JWKS_TIMEOUT`, kept `JWKS_MAX_AGE_S`, refreshed once on an unknown
  ``kid``, at most every `JWKS_REFRESH_COOLDOWN_S`), then ``iss``, ``aud``, ``exp``,
  ``nbf`` (with `LEEWAY_S`) and ``sub``. No token: 401 with
  ``WWW-Authenticate: Bearer resource_metadata="…"``; a bad one adds
  ``error="invalid_token"``; an unreachable JWKS is 503.
* **Scopes → tools.** `required_scope` names the one scope each tool needs:
  ``drip:admin`` for secret-key operations (listed only when the server's own key is
  ``sk_``), ``drip:charge`` for tools that move money, ``drip:write`` for other writes,
  ``drip:read`` for reads. The middleware puts the token's `ScopeGate` in a context
  variable; `current_gate` hands it to `drip_mcp.server.DripServer` (its ``tool_gate``),
  which intersects its allowed tools with it: a tool outside the scopes is neither
  listed nor callable (``INSUFFICIENT_SCOPE``, before any request).
* **Tenancy.** The token's ``sub`` is the tenant (`current_subject`) and the MCP
  session principal (``scope["user"]``): a session answers only its own subject.
  Drip itself is called with the server's ``DRIP_API_KEY``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import jwt
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from drip_mcp.errors import DripError
from drip_mcp.hosts import is_loopback
from drip_mcp.http.auth import bearer_token
from drip_mcp.http.options import HEALTH_PATH
from drip_mcp.keys import KeyType
from drip_mcp.state.tenancy import acting_as
from drip_mcp.tools import Operation

__all__ = [
    "JWKS_MAX_AGE_S",
    "JWKS_REFRESH_COOLDOWN_S",
    "JWKS_TIMEOUT",
    "LEEWAY_S",
    "METADATA_PATH",
    "SCOPES",
    "SCOPE_ADMIN",
    "SCOPE_CHARGE",
    "SCOPE_READ",
    "SCOPE_WRITE",
    "InsufficientScopeError",
    "JwksCache",
    "JwksUnavailableError",
    "JwtVerifier",
    "OAuthMiddleware",
    "ScopeGate",
    "SigningKey",
    "TokenRejectedError",
    "allowed_by_scopes",
    "current_gate",
    "current_subject",
    "metadata_routes",
    "required_scope",
]

logger = logging.getLogger("drip_mcp.http.oauth")

SCOPE_READ = "drip:read"
SCOPE_WRITE = "drip:write"
SCOPE_CHARGE = "drip:charge"
SCOPE_ADMIN = "drip:admin"
SCOPES = (SCOPE_READ, SCOPE_WRITE, SCOPE_CHARGE, SCOPE_ADMIN)

METADATA_PATH = "/.well-known/oauth-protected-resource"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_TIMEOUT = httpx2.Timeout(5.0)  # per request to the identity provider: connect, read, write, pool
JWKS_MAX_AGE_S = 3600.0  # refetch the key set at least this often
JWKS_REFRESH_COOLDOWN_S = 30.0  # an unknown kid refetches at most this often (no refetch storms from junk tokens)
JWKS_MAX_BYTES = 512 * 1024
LEEWAY_S = 30  # clock skew allowed on exp / nbf / iat
# Asymmetric signatures only: never "none", never HS* (the JWKS is public).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_KEY_FAMILY = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}


# --- scopes → tools ------------------------------------------------------------------------------


def required_scope(spec: Operation) -> str:
    """The one scope a tool needs: admin for secret-key operations, else charge, write or read."""
    if spec.scope is KeyType.SECRET:
        return SCOPE_ADMIN
    if spec.moves_money:
        return SCOPE_CHARGE
    if not spec.read_only:
        return SCOPE_WRITE
    return SCOPE_READ


def allowed_by_scopes(spec: Operation, scopes: Collection[str]) -> bool:
    """Whether a token granted `scopes` may list and call `spec` (scopes do not imply one another)."""
    return required_scope(spec) in scopes


class InsufficientScopeError(DripError):
    """The access token lacks the scope a tool needs; refused before any request."""

    default_code = "INSUFFICIENT_SCOPE"

    def __init__(self, operation: str, scope: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", 403)
        kwargs.setdefault("hint", f"Ask for an access token that grants {scope} (scopes: {' '.join(SCOPES)}).")
        super().__init__(
            f"{operation} needs the OAuth scope {scope}, which this access token does not grant.", **kwargs
        )
        self.operation = operation
        self.scope = scope


@dataclass(frozen=True)
class ScopeGate:
    """The tools one token's scopes allow (a `drip_mcp.server.ToolGate`)."""

    scopes: frozenset[str]

    def allows(self, spec: Operation) -> bool:
        return allowed_by_scopes(spec, self.scopes)

    def refusal(self, spec: Operation) -> DripError:
        return InsufficientScopeError(spec.name, required_scope(spec))


@dataclass(frozen=True)
class _Grant:
    subject: str
    gate: ScopeGate


# The verified token of the HTTP request being served (OAuth mode); set by `OAuthMiddleware`. The SDK runs
# each MCP handler in the contextvars of the POST that carried the message (see `drip_mcp.http.tenants`).
_current_grant: ContextVar[_Grant | None] = ContextVar("drip_mcp_oauth_grant", default=None)


def current_gate() -> ScopeGate | None:
    """The scope gate of the request being served; None outside OAuth mode."""
    grant = _current_grant.get()
    return grant.gate if grant is not None else None


def current_subject() -> str | None:
    """The token subject (``sub``, the tenant) of the request being served; None outside OAuth mode."""
    grant = _current_grant.get()
    return grant.subject if grant is not None else None


# --- token verification --------------------------------------------------------------------------


class TokenRejectedError(Exception):
    """The bearer token is not acceptable; `str()` says why in a few words (never the token)."""


class JwksUnavailableError(Exception):
    """The identity provider's key set could not be fetched, so no token can be checked."""


def _url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.hostname) and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))
    )


@dataclass(frozen=True)
class SigningKey:
    """One key of the issuer's set, with the algorithm its JWK declares (``alg``), if any."""

    jwk: jwt.PyJWK
    alg: str | None

    def signs_with(self, alg: str) -> bool:
        """Whether a token signed with `alg` may be checked with this key (declared alg, else the key family)."""
        if self.alg is not None:
            return self.alg == alg
        return alg.startswith(_KEY_FAMILY.get(self.jwk.key_type or "", ()))


class JwksCache:
    """The issuer's signing keys, fetched on first use, kept `max_age` seconds, refetched on an unknown ``kid``.

    `open` must be entered (the app's lifespan does) before `key_for` is called.
    """

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None = None,
        *,
        max_age: float = JWKS_MAX_AGE_S,
        refresh_cooldown: float = JWKS_REFRESH_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._max_age = max_age
        self._cooldown = refresh_cooldown
        self._clock = clock
        self._lock = anyio.Lock()
        self._http: httpx2.AsyncClient | None = None
        self._keys: dict[str | None, SigningKey] | None = None
        self._fetched_at = 0.0
        self._last_forced: float | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        async with httpx2.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False) as http:
            self._http = http
            try:
                yield
            finally:
                self._http = None

    async def key_for(self, kid: str | None) -> SigningKey:
        """The signing key named `kid`; raises `TokenRejectedError` or `JwksUnavailableError`."""
        keys = await self._load(force=False)
        key = self._pick(keys, kid)
        if key is None:
            keys = await self._load(force=True)
            key = self._pick(keys, kid)
        if key is None:
            raise TokenRejectedError("unknown signing key")
        return key

    @staticmethod
    def _pick(keys: Mapping[str | None, SigningKey], kid: str | None) -> SigningKey | None:
        if kid is None:  # a token without kid: only unambiguous with a single key
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    async def _load(self, *, force: bool) -> Mapping[str | None, SigningKey]:
        async with self._lock:
            now = self._clock()
            keys = self._keys
            if keys is not None:
                fresh = now - self._fetched_at < self._max_age
                if not force and fresh:
                    return keys
                if force and self._last_forced is not None and now - self._last_forced < self._cooldown:
                    return keys  # refreshed moments ago (perhaps by a concurrent request): use what we have
            if force:
                self._last_forced = now
            try:
                self._keys = await self._fetch()
            except JwksUnavailableError:
                if keys is None:
                    raise
                logger.warning("could not refresh the OAuth key set; keeping the previous keys", exc_info=True)
                self._fetched_at = now - self._max_age + self._cooldown  # retry after the cooldown
                return keys
            self._fetched_at = now
            return self._keys

    async def _fetch(self) -> dict[str | None, SigningKey]:
        if self._jwks_url is None:
            discovery = await self._get_json(self._issuer.rstrip("/") + DISCOVERY_PATH)
            if discovery.get("issuer") != self._issuer:
                raise JwksUnavailableError("the discovery document names another issuer")
            url = discovery.get("jwks_uri")
            if not isinstance(url, str) or not _url_allowed(url):
                raise JwksUnavailableError("the discovery document has no usable jwks_uri")
            self._jwks_url = url
        document = await self._get_json(self._jwks_url)
        keys: dict[str | None, SigningKey] = {}
        raw_keys = document.get("keys")
        for raw in raw_keys if isinstance(raw_keys, list) else ():
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            try:
                alg = raw.get("alg")
                keys[raw.get("kid")] = SigningKey(jwt.PyJWK(raw), alg if isinstance(alg, str) else None)
            except jwt.PyJWTError:  # a key type or curve we cannot use: skip it, as PyJWKSet does
                continue
        if not keys:
            raise JwksUnavailableError("the key set holds no usable signing keys")
        logger.info("fetched the OAuth key set (%d keys)", len(keys))
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._http is None:
            raise JwksUnavailableError("the OAuth key set client is not open (the app's lifespan has not started)")
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise JwksUnavailableError(f"{type(exc).__name__} fetching {url}") from exc
        if response.status_code != 200 or len(response.content) > JWKS_MAX_BYTES:
            raise JwksUnavailableError(f"{url} answered {response.status_code} ({len(response.content)} bytes)")
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise JwksUnavailableError(f"{url} did not return JSON") from exc
        if not isinstance(data, dict):
            raise JwksUnavailableError(f"{url} did not return a JSON object")
        return data


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 9068: space-separated; Keycloak, Auth0) and ``scp`` (Okta: a list; Entra: a string)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found)


class JwtVerifier:
    """Checks a JWT access token (the SDK's `TokenVerifier` protocol): signature, issuer, audience, times, subject."""

    def __init__(self, issuer: str, audience: str, jwks: JwksCache, *, leeway: float = LEEWAY_S) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks
        self._leeway = leeway

    async def verify(self, token: str) -> AccessToken:
        """The verified token; raises `TokenRejectedError` (a 401) or `JwksUnavailableError` (a 503)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejectedError("malformed token") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejectedError("signature algorithm not accepted")
        kid = header.get("kid")
        key = await self._jwks.key_for(kid if isinstance(kid, str) else None)
        if not key.signs_with(alg):
            raise TokenRejectedError("signature algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejectedError("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejectedError("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejectedError("token issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRejectedError("token from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRejectedError("bad signature") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejectedError("invalid token") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRejectedError("token has no subject")
        client = claims.get("client_id") or claims.get("azp")
        return AccessToken(
            token=token,
            client_id=client if isinstance(client, str) and client else subject,
            scopes=sorted(_scopes(claims)),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=subject,
            claims=claims,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        """`TokenVerifier`: the verified token, or None when it is rejected or cannot be checked."""
        try:
            return await self.verify(token)
        except (TokenRejectedError, JwksUnavailableError):
            return None


# --- metadata and challenges ---------------------------------------------------------------------


def _resource_url(audience: str, request_base: str, mcp_path: str) -> str:
    """The resource this server is: the audience when it is a URL (RFC 8707), else this request's MCP URL."""
    return audience if urlsplit(audience).scheme in ("http", "https") else f"{request_base}{mcp_path}"


def _metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: ``/.well-known/oauth-protected-resource`` between the host and the resource's path."""
    parts = urlsplit(resource)
    path = parts.path if parts.path != "/" else ""
    return f"{parts.scheme}://{parts.netloc}{METADATA_PATH}{path}"


def _request_base(scope: Scope) -> str:
    request = Request(scope)
    return f"{request.url.scheme}://{request.url.netloc}"


def metadata_routes(
    *, issuer: str, audience: str, mcp_path: str, security: TransportSecuritySettings
) -> list[BaseRoute]:
    """RFC 9728 protected-resource metadata at the root and the MCP path variant; public, Host/Origin checked."""
    checks = TransportSecurityMiddleware(security)

    async def metadata(request: Request) -> Response:
        refused = await checks.validate_request(request, is_post=False)
        if refused is not None:
            return refused
        document = ProtectedResourceMetadata.model_validate(
            {
                "resource": _resource_url(audience, _request_base(request.scope), mcp_path),
                "authorization_servers": [issuer],
                "scopes_supported": list(SCOPES),
                "bearer_methods_supported": ["header"],
                "resource_name": "drip-mcp",
            }
        )
        return JSONResponse(
            document.model_dump(mode="json", exclude_none=True), headers={"Cache-Control": "public, max-age=3600"}
        )

    paths = dict.fromkeys([METADATA_PATH, f"{METADATA_PATH}{mcp_path.rstrip('/')}"])
    return [Route(path, metadata, methods=["GET"]) for path in paths]


async def _challenge(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    code = "UNAUTHORIZED" if status == 401 else "OAUTH_UNAVAILABLE"
    body = json.dumps({"error": message, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class OAuthMiddleware:
    """Pure ASGI: every request but ``/health`` and the metadata needs a valid access token.

    Host/Origin are checked first (so a 401 never names a foreign host). A verified token
    becomes the request's principal (``scope["user"]``, which binds MCP sessions), its
    `ScopeGate` and subject (`current_gate`, `current_subject`) and the SDK's
    `get_access_token()`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: JwtVerifier,
        mcp_path: str,
        security: TransportSecuritySettings,
    ) -> None:
        self.app = app
        self._verifier = verifier
        self._mcp_path = mcp_path
        self._checks = TransportSecurityMiddleware(security)

    def _www_authenticate(self, scope: Scope, error: str | None) -> list[tuple[bytes, bytes]]:
        resource = _resource_url(self._verifier.audience, _request_base(scope), self._mcp_path)
        value = f'Bearer resource_metadata="{_metadata_url(resource)}"'
        if error is not None:
            value += f', error="{error}"'
        return [(b"www-authenticate", value.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == HEALTH_PATH or path.startswith(METADATA_PATH):
            await self.app(scope, receive, send)
            return
        refused = await self._checks.validate_request(Request(scope), is_post=False)
        if refused is not None:
            await refused(scope, receive, send)
            return
        presented = bearer_token(scope)
        if presented is None:
            message = "Missing access token: send Authorization: Bearer <token from the authorization server>."
            await _challenge(send, 401, message, self._www_authenticate(scope, None))
            return
        try:
            access = await self._verifier.verify(presented)
        except TokenRejectedError as exc:
            logger.info("access token refused: %s", exc)
            await _challenge(send, 401, f"Invalid access token: {exc}.", self._www_authenticate(scope, "invalid_token"))
            return
        except JwksUnavailableError as exc:
            logger.warning("cannot check access tokens: %s", exc)
            await _challenge(send, 503, "The authorization server's keys are unavailable; try again later.", [])
            return
        user = AuthenticatedUser(access)
        scope["user"] = user  # the SDK binds each session to this principal (client, issuer, subject)
        grant = _current_grant.set(_Grant(subject=access.subject or "", gate=ScopeGate(frozenset(access.scopes))))
        sdk = auth_context_var.set(user)
        try:
            with acting_as(access.subject):  # the tenant: ledger, budgets, confirm tokens, outbox rows
                await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(sdk)
            _current_grant.reset(grant)
