"""Serve the sandbox on a socket with uvicorn (``python -m drip_mcp sandbox``).

Webhooks are delivered to loopback hosts only unless `serve` gets
``webhook_allowed_hosts`` (from ``--allow-webhook-host HOST`` (repeatable,
``*.suffix`` patterns allowed) or ``--allow-any-webhook-host``, see
`drip_mcp.cli.add_webhook_host_arguments`), else from
``DRIP_SANDBOX_WEBHOOK_HOSTS`` (comma-separated; ``*`` for any host).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from drip_mcp.hosts import bind_socket, is_loopback
from drip_mcp.paths import ensure_private_dir
from drip_mcp.sandbox.app import Sandbox
from drip_mcp.sandbox.config import FaultConfig, SandboxConfig
from drip_mcp.sandbox.faults import SocketDropper

__all__ = ["serve"]


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    db_path: Path,
    allow_remote: bool = False,
    starting_balance_usdc: Decimal = SandboxConfig.starting_balance_usdc,
    faults: FaultConfig | None = None,
    webhook_allowed_hosts: tuple[str, ...] | None = None,
) -> None:
    """Serve the sandbox until interrupted.

    Binds loopback only unless `allow_remote` (a non-loopback `host` without it
    raises `ValueError`). `port` 0 lets the OS choose. Once listening, prints
    ``drip-mcp sandbox listening on http://HOST:PORT/v1 (db: PATH)`` to
    stderr. Fault injection comes from `faults`, webhook hosts beyond loopback from
    `webhook_allowed_hosts` (the CLI reads both from flags and the ``DRIP_SANDBOX_*``
    environment variables through `drip_mcp.settings`).
    """
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"Refusing to serve the sandbox on non-loopback host {host!r}: pass --allow-remote to expose it"
        )
    sock = bind_socket(host, port)  # first: a port in use is one line, before anything is opened
    if str(db_path) != ":memory:":
        ensure_private_dir(Path(db_path).expanduser().parent)
    dropper = SocketDropper()

    class DroppableH11Protocol(H11Protocol):
        """uvicorn's h11 protocol, with connections registered so faults can drop them."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            dropper.register(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            dropper.unregister(self.transport)
            super().connection_lost(exc)

    config = SandboxConfig(
        db_path=db_path,
        starting_balance_usdc=starting_balance_usdc,
        faults=faults,
        webhook_allowed_hosts=webhook_allowed_hosts or (),
    )
    sandbox = Sandbox(config, connection_dropper=dropper)
    bound_port = sock.getsockname()[1]
    display_host = f"[{host}]" if ":" in host else host

    class AnnouncingServer(uvicorn.Server):
        """Prints the listening line once startup (lifespan and listen) is done."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                print(
                    f"drip-mcp sandbox listening on http://{display_host}:{bound_port}/v1 (db: {db_path})",
                    file=sys.stderr,
                    flush=True,
                )

    server = AnnouncingServer(
        uvicorn.Config(
            sandbox.app,
            http=DroppableH11Protocol,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        sandbox.store.close()
