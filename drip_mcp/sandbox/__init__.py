"""A local, Drip-compatible usage-billing API (Starlette over SQLite).

``Sandbox(SandboxConfig(...))`` gives an ASGI `app` and an in-process
`transport()`; `drip_mcp.sandbox.serve.serve` runs it on a socket for the
published SDKs. See `drip_mcp.sandbox.store` for the seeded pricing plans and
`drip_mcp.sandbox.faults` for fault injection.

Webhooks are delivered to loopback hosts only (``localhost``, 127.0.0.0/8,
``::1``): creating or PATCHing a webhook whose URL names another host is
refused with 422 ``WEBHOOK_URL_NOT_ALLOWED``. To allow more, set
``SandboxConfig(webhook_allowed_hosts=("hooks.example.com", "*.example.org"))``
(``("*",)`` allows any https host); `serve` takes the same as
``--allow-webhook-host HOST`` / ``--allow-any-webhook-host`` or
``DRIP_SANDBOX_WEBHOOK_HOSTS``.

Time-dependent domains (entitlement periods, subscription periods) read
``sandbox.store.clock`` (epoch seconds, `time.time` by default), which tests
replace to move time without sleeping.
"""

from __future__ import annotations

from drip_mcp.sandbox.app import Sandbox
from drip_mcp.sandbox.config import FaultConfig, SandboxConfig
from drip_mcp.sandbox.store import Store

__all__ = ["FaultConfig", "Sandbox", "SandboxConfig", "Store"]
