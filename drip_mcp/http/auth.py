"""HTTP authentication: a shared bearer token, or each client's own Drip key (per-request keys).

* **Bearer auth** (``--auth-token`` / ``DRIP_MCP_AUTH_TOKEN``): every request
  except ``GET /health`` needs ``Authorization: Bearer <token>`` (compared in
  constant time), else 401 ``{"error", "code": "UNAUTHORIZED"}``.
* **Per-request keys** (``--per-request-key``): each client sends its own Drip
  key as ``Authorization: Bearer pk_…/sk_…``. `AuthMiddleware` resolves it to
  a `DripClient` from the `TenantPool` (keyed by the key's fingerprint; every
  tenant shares one HTTP pool) and makes it the request's tenant
  (`drip_mcp.http.tenants`). It also marks the request's principal
  (``scope["user"]``), so the SDK binds every MCP session (``Mcp-Session-Id``
  or SSE ``session_id``) to the key that opened it: another key gets 404.

OAuth 2.1 resource-server mode (``--oauth-issuer``) is the third way, in
`drip_mcp.http.oauth` (`OAuthMiddleware` replaces `AuthMiddleware`).
"""

from __future__ import annotations

import hmac
import json

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Receive, Scope, Send

from drip_mcp.errors import ConfigurationError
from drip_mcp.http.options import HEALTH_PATH
from drip_mcp.http.tenants import TenantHolder, enter_tenant, leave_tenant
from drip_mcp.keys import KEY_FORMAT_HINT, ApiKey

__all__ = ["AuthMiddleware", "bearer_token"]


def bearer_token(scope: Scope) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header, or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


async def _unauthorized(send: Send, message: str, *, invalid: bool) -> None:
    challenge = 'Bearer realm="drip-mcp"' + (', error="invalid_token"' if invalid else "")
    body = json.dumps({"error": message, "code": "UNAUTHORIZED"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Pure ASGI (so streaming responses pass straight through): bearer token or per-request Drip key.

    ``/health`` is always open. Everything else needs the token (``--auth-token``)
    or a well-formed Drip key (``--per-request-key``); with neither configured
    the middleware only passes requests on.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, tenants: TenantHolder | None) -> None:
        self.app = app
        self._token = token.encode() if token is not None else None
        self._tenants = tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope)
        if self._token is not None:
            if presented is None:
                await _unauthorized(send, "Missing bearer token: send Authorization: Bearer <token>.", invalid=False)
                return
            if not hmac.compare_digest(presented.encode(), self._token):
                await _unauthorized(send, "Invalid bearer token.", invalid=True)
                return
            await self.app(scope, receive, send)
            return
        if self._tenants is None:
            await self.app(scope, receive, send)
            return
        if presented is None:
            await _unauthorized(
                send, "Missing Drip key: send Authorization: Bearer <your Drip pk_/sk_ key>.", invalid=False
            )
            return
        try:
            key = ApiKey(presented)
        except ConfigurationError:  # its message would show part of the key: use our own
            await _unauthorized(send, f"Invalid Drip key in Authorization header: {KEY_FORMAT_HINT}.", invalid=True)
            return
        try:
            client = self._tenants.pool.client_for(key)
        except ConfigurationError as exc:  # e.g. a live key against the sandbox
            await _unauthorized(send, f"Drip key refused: {exc}.", invalid=True)
            return
        fp = key.fingerprint
        # The SDK binds each session to this principal: another key cannot use it (404).
        scope["user"] = AuthenticatedUser(
            AccessToken(token=fp, client_id=f"drip-key-{fp[:32]}", scopes=[key.type.value])
        )
        token = enter_tenant(client)
        try:
            await self.app(scope, receive, send)
        finally:
            leave_tenant(token)
