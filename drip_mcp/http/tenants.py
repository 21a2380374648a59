"""Which tenant an HTTP request acts for, in per-request-key mode.

`drip_mcp.http.auth.AuthMiddleware` resolves the request's Drip key to a
`DripClient` from the `TenantPool` (`drip_mcp.runtime`) and puts it in a
context variable; the server's ``resolve_client`` (`current_tenant`) reads it.
The SDK (mcp 2.3) snapshots the sender's contextvars with every message it
queues to the session (``ContextSendStream``) and runs each handler in that
snapshot, so the POST's tenant reaches the tool handler under streamable HTTP
(stateful and stateless) and SSE alike.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from drip_mcp.api.client import DripClient
from drip_mcp.errors import ConfigurationError, DripError
from drip_mcp.runtime import TenantPool

__all__ = ["TenantHolder", "current_tenant", "enter_tenant", "leave_tenant"]

# The Drip client of the HTTP request being served (per-request-key mode); set by the auth middleware.
_current_client: ContextVar[DripClient | None] = ContextVar("drip_mcp_current_client", default=None)


def enter_tenant(client: DripClient) -> Token[DripClient | None]:
    """Make `client` the tenant of the current request; pass the token to `leave_tenant`."""
    return _current_client.set(client)


def leave_tenant(token: Token[DripClient | None]) -> None:
    _current_client.reset(token)


def current_tenant() -> DripClient:
    """The client of the request being served; a structured error when the request carried no key."""
    client = _current_client.get()
    if client is None:
        raise DripError(
            "This request carries no Drip key.",
            code="UNAUTHORIZED",
            hint="Send Authorization: Bearer <your Drip pk_/sk_ key> with every request.",
        )
    return client


class TenantHolder:
    """Where the lifespan puts the `TenantPool` once the HTTP pool is open."""

    def __init__(self) -> None:
        self._pool: TenantPool | None = None

    @property
    def pool(self) -> TenantPool:
        if self._pool is None:
            raise ConfigurationError("the server is not running (its lifespan has not started)")
        return self._pool

    @pool.setter
    def pool(self, value: TenantPool | None) -> None:
        self._pool = value
