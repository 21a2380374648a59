"""A local, Drip-compatible usage-billing API (Starlette over SQLite).

``Sandbox(SandboxConfig(...))`` gives an ASGI `app` and an in-process
`transport()`; `drip_mcp.sandbox.serve.serve` runs it on a socket for the
published SDKs. See `drip_mcp.sandbox.store` for the seeded pricing plans and
`drip_mcp.sandbox.faults` for fault injection.
"""

from __future__ import annotations

from drip_mcp.sandbox.app import Sandbox
from drip_mcp.sandbox.config import FaultConfig, SandboxConfig
from drip_mcp.sandbox.store import Store

__all__ = ["FaultConfig", "Sandbox", "SandboxConfig", "Store"]
