"""HTTP transports (SSE and streamable HTTP): to be implemented (issue 5)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from drip_mcp.errors import ConfigurationError
from drip_mcp.settings import Settings

__all__ = ["HttpOptions", "serve_http"]


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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> HttpOptions:
        return cls(
            transport=args.transport,
            host=args.host,
            port=args.port,
            path=args.path,
            stateless=args.stateless,
            json_response=args.json_response,
            allowed_hosts=tuple(args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
            auth_token=args.auth_token,
            per_request_key=args.per_request_key,
            workers=args.workers,
        )


def serve_http(settings: Settings, options: HttpOptions) -> None:
    raise ConfigurationError(f"--transport {options.transport} is not available yet")
