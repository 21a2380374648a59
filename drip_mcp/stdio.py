"""Serve MCP over stdio (the default transport): one client, the server's own key.

State (`drip_mcp.state`) is the settings' store; the ledger and budget are this process's own.
"""

from __future__ import annotations

import sys

import anyio

from drip_mcp.runtime import open_client
from drip_mcp.server import banner, build_server
from drip_mcp.settings import Settings
from drip_mcp.state.opening import open_state
from drip_mcp.tools.context import Services

__all__ = ["serve_stdio"]


def serve_stdio(settings: Settings) -> None:
    """Serve MCP over stdio until the client goes away; one line on stderr says what runs."""

    async def main() -> None:
        async with open_state(settings) as store, open_client(settings, store=store) as client:
            server = build_server(settings, client, services=Services.for_settings(settings, store, per_process=True))
            print(banner(settings, server, "stdio"), file=sys.stderr, flush=True)
            await server.run_stdio_async()

    anyio.run(main)
