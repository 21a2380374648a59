"""How to serve MCP over HTTP: `HttpOptions` (the flags) and the Host/Origin allow-list they imply.

* **Host/Origin checks** (DNS-rebinding protection) are always on, with an
  explicit allow-list: loopback (``127.0.0.1``, ``localhost``, ``[::1]``, any
  port or none), the bind host when it is a specific address, and every
  ``--allowed-host``/``--allowed-origin``. A foreign ``Host`` gets 421, a
  foreign ``Origin`` 403 (enforced by the SDK's transports). Host names compare
  case-insensitively: the patterns are lower case and `LowercaseHostHeaders`
  lowers both headers before the SDK (whose matching is case-sensitive) sees them.
  ``GET /health`` answers any ``Host`` (probes use pod IPs and service names) but
  tells only an allowed caller (`HttpOptions.allows`) its version.
* **Loopback unless authenticated.** Binding anything but loopback needs
  ``--auth-token``, ``--per-request-key`` or OAuth resource-server mode
  (``--oauth-issuer`` + ``--oauth-audience``, `drip_mcp.http.oauth`); otherwise
  `ConfigurationError`. The three use the Authorization header: choose one.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from drip_mcp.errors import ConfigurationError
from drip_mcp.hosts import is_loopback
from drip_mcp.settings import (
    AUTH_TOKEN_ENV,
    OAUTH_AUDIENCE_ENV,
    OAUTH_ISSUER_ENV,
    OAuthEnvironment,
    auth_token_from_env,
)

__all__ = [
    "HEALTH_PATH",
    "MESSAGE_PATH",
    "SSE_PATH",
    "TRANSPORTS",
    "HttpOptions",
    "LowercaseHostHeaders",
    "host_header_form",
]

HEALTH_PATH = "/health"
SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"
TRANSPORTS = ("sse", "streamable-http")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names to recognise, not to bind


def host_header_form(host: str) -> str:
    """How `host` appears in a ``Host`` header: IPv6 addresses in brackets."""
    name = host.strip()
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name


def _check_oauth_url(flag: str, url: str) -> None:
    """An issuer or JWKS URL: absolute https (http only for loopback, as in tests), no fragment."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))
    if not secure or not parts.hostname or parts.fragment:
        raise ConfigurationError(
            f"{flag} must be an https:// URL without a fragment (http:// only on loopback); got {url!r}"
        )


def _matches(value: str, patterns: Sequence[str]) -> bool:
    """The SDK's rule (exact, or ``name:*`` for any port), case-insensitively."""
    value = value.lower()
    return any(value == p or (p.endswith(":*") and value.startswith(p[:-1])) for p in patterns)


class LowercaseHostHeaders:
    """ASGI middleware: lower-case the ``Host`` and ``Origin`` headers (host names ignore case)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = [(k, v.lower() if k in (b"host", b"origin") else v) for k, v in scope.get("headers", ())]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class HttpOptions:
    """How to serve MCP over HTTP (flags of ``drip-mcp --transport sse|streamable-http``)."""

    transport: str = "streamable-http"
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    stateless: bool = False
    json_response: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)
    per_request_key: bool = False
    workers: int = 1
    oauth_issuer: str | None = None
    oauth_audience: str | None = None
    oauth_jwks_url: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> HttpOptions:
        """The options for parsed CLI flags; the token and OAuth values fall back to their environment variables."""
        token = args.auth_token if args.auth_token else (auth_token_from_env(environ) or "")
        oauth = OAuthEnvironment.read(environ)
        return cls(
            transport=args.transport,
            host=args.host,
            port=args.port,
            path=args.path,
            stateless=args.stateless,
            json_response=args.json_response,
            allowed_hosts=tuple(args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
            auth_token=token.strip() or None,
            per_request_key=args.per_request_key,
            workers=args.workers,
            oauth_issuer=(args.oauth_issuer or "").strip() or oauth.issuer,
            oauth_audience=(args.oauth_audience or "").strip() or oauth.audience,
            oauth_jwks_url=(args.oauth_jwks_url or "").strip() or oauth.jwks_url,
        )

    @property
    def oauth(self) -> bool:
        """OAuth 2.1 resource-server mode: bearer JWTs from ``oauth_issuer`` for ``oauth_audience``."""
        return self.oauth_issuer is not None

    def validate(self) -> None:
        """Raise `ConfigurationError` (saying how to fix it) for unsafe or inconsistent options."""
        if self.transport not in TRANSPORTS:
            raise ConfigurationError(f"--transport must be one of {', '.join(TRANSPORTS)} (got {self.transport!r})")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"--port must be between 0 and 65535 (got {self.port})")
        if self.workers < 1:
            raise ConfigurationError(f"--workers must be at least 1 (got {self.workers})")
        if self.transport == "streamable-http":
            if not self.path.startswith("/") or self.path.rstrip("/") in ("", HEALTH_PATH):
                raise ConfigurationError(f"--path must start with '/' and not be '/' or {HEALTH_PATH} ({self.path!r})")
        elif self.stateless or self.json_response:
            raise ConfigurationError(
                "--stateless and --json-response apply to --transport streamable-http only (SSE keeps a session)"
            )
        if self.workers > 1 and not (self.transport == "streamable-http" and self.stateless):
            raise ConfigurationError(
                "--workers > 1 needs --transport streamable-http --stateless (sessions live in one process; "
                "add --json-response too for plain JSON replies)"
            )
        if self.workers > 1 and self.port == 0:
            raise ConfigurationError("--workers > 1 needs an explicit --port (the workers share one listening socket)")
        if self.auth_token is not None and self.per_request_key:
            raise ConfigurationError(
                "--auth-token and --per-request-key both use the Authorization header: choose one "
                "(with --per-request-key every client authenticates with its own Drip key)"
            )
        self._validate_oauth()
        if not is_loopback(self.host) and self.auth_token is None and not self.per_request_key and not self.oauth:
            raise ConfigurationError(
                f"refusing to serve on non-loopback host {self.host!r} without authentication: pass --auth-token "
                f"(or set {AUTH_TOKEN_ENV}), --per-request-key or --oauth-issuer, or bind --host 127.0.0.1 "
                "(clients must also be allowed with --allowed-host/--allowed-origin; see docs/deployment.md)"
            )

    def _validate_oauth(self) -> None:
        issuer = self.oauth_issuer
        if issuer is None:
            if self.oauth_audience is not None or self.oauth_jwks_url is not None:
                raise ConfigurationError(
                    f"--oauth-audience and --oauth-jwks-url need --oauth-issuer ({OAUTH_ISSUER_ENV})"
                )
            return
        if self.auth_token is not None or self.per_request_key:
            raise ConfigurationError(
                "--oauth-issuer cannot be combined with --auth-token or --per-request-key: all three use the "
                "Authorization header (in OAuth mode the server's own DRIP_API_KEY calls Drip)"
            )
        if self.oauth_audience is None:
            raise ConfigurationError(
                f"--oauth-issuer needs --oauth-audience ({OAUTH_AUDIENCE_ENV}): the audience your identity provider "
                "puts in tokens for this server (RFC 8707), usually its public URL such as https://mcp.example.com/mcp"
            )
        _check_oauth_url("--oauth-issuer", issuer)
        if self.oauth_jwks_url is not None:
            _check_oauth_url("--oauth-jwks-url", self.oauth_jwks_url)

    def transport_security(self) -> TransportSecuritySettings:
        """The explicit Host/Origin allow-list (DNS-rebinding protection is always on)."""
        hosts: list[str] = []
        origins: list[str] = []
        names = list(_LOOPBACK_HOSTS)
        bind = host_header_form(self.host)
        if self.host.strip() not in _WILDCARD_HOSTS and bind.lower() not in names:
            names.append(bind)
        for name in names:
            hosts += [f"{name}:*", name]
            origins += [f"http://{name}:*", f"http://{name}", f"https://{name}:*", f"https://{name}"]
        for extra in self.allowed_hosts:
            value = extra.strip()
            if not value:
                continue
            has_port = "]:" in value if value.startswith("[") else ":" in value
            hosts += [value] if has_port else [value, f"{value}:*"]
        origins += [o.strip().rstrip("/") for o in self.allowed_origins if o.strip()]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(dict.fromkeys(h.lower() for h in hosts)),
            allowed_origins=list(dict.fromkeys(o.lower() for o in origins)),
        )

    def allows(self, host: str | None, origin: str | None) -> bool:
        """Whether a request with these ``Host`` and ``Origin`` headers passes the allow-list."""
        security = self.transport_security()
        return (
            bool(host)
            and _matches(host or "", security.allowed_hosts)
            and (not origin or _matches(origin, security.allowed_origins))
        )

    @property
    def mcp_path(self) -> str:
        return self.path if self.transport == "streamable-http" else SSE_PATH
