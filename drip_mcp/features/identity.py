"""What the server says about itself: its icon, cache hints on fixed lists, and honest change streams.

* `ICONS`: a small SVG (a drop) as a ``data:`` URI, so no client has to fetch anything.
* `CACHE_HINTS`: tools, resources, resource templates and prompts are fixed for a key for the life of
  the process (the key's scope and the operator's filters decide them at start-up), so a client may
  keep them for `LIST_TTL_MS`. Tools and resources depend on the key: ``private``. Prompts depend on the
  key too (a prompt is listed only when its tools are callable): ``private`` as well.
* `SERVES_SUBSCRIPTIONS`: drip-mcp never changes a list and never publishes a resource update, so it
  does not serve ``subscriptions/listen``; the SDK then advertises ``listChanged: false`` and
  ``subscribe: false`` on 2026-07-28 connections too (it already does on 2025-11-25 ones).
"""

from __future__ import annotations

import base64
from typing import Final

from mcp.server import CacheHint
from mcp.server.caching import CacheableMethod
from mcp_types import Icon

__all__ = ["CACHE_HINTS", "ICONS", "ICON_SVG", "LIST_TTL_MS", "SERVES_SUBSCRIPTIONS"]

ICON_SVG: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
    '<path d="M32 4C24 18 12 30 12 42a20 20 0 0 0 40 0C52 30 40 18 32 4z" fill="#2563eb"/>'
    '<path d="M24 42a8 8 0 0 0 8 8" stroke="#fff" stroke-width="4" fill="none" stroke-linecap="round"/>'
    "</svg>"
)

ICONS: Final = [
    Icon(
        src="data:image/svg+xml;base64," + base64.b64encode(ICON_SVG.encode()).decode(),
        mime_type="image/svg+xml",
        sizes=["any"],
    )
]

LIST_TTL_MS: Final = 5 * 60 * 1000
"""How long a client may reuse a list result (the lists cannot change while the process runs)."""

_FIXED_PER_KEY = CacheHint(ttl_ms=LIST_TTL_MS, scope="private")
CACHE_HINTS: Final[dict[CacheableMethod, CacheHint]] = {
    "tools/list": _FIXED_PER_KEY,
    "resources/list": _FIXED_PER_KEY,
    "resources/templates/list": _FIXED_PER_KEY,
    "prompts/list": _FIXED_PER_KEY,
}

SERVES_SUBSCRIPTIONS: Final = False
"""Passed as ``MCPServer(subscriptions=...)``: nothing is ever published, so nothing is advertised."""
