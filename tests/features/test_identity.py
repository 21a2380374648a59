"""What the server advertises, both protocol eras: exactly what it serves, its icon, cache hints on fixed lists."""

from __future__ import annotations

import base64

import pytest
from server_fixtures import Harness

from drip_mcp.features.identity import ICON_SVG, LIST_TTL_MS

pytestmark = pytest.mark.anyio


async def test_capabilities_advertise_what_is_served_and_no_change_streams(h: Harness) -> None:
    caps = h.mcp.server_capabilities
    assert caps.tools is not None
    assert caps.resources is not None
    assert caps.prompts is not None
    assert caps.completions is not None
    assert caps.logging is None
    assert not caps.tools.list_changed
    assert not caps.resources.list_changed
    assert not caps.resources.subscribe
    assert not caps.prompts.list_changed
    assert (await h.mcp.list_prompts()).prompts  # the advertised prompts capability is not empty


async def test_server_info_carries_the_svg_icon(h: Harness) -> None:
    info = h.mcp.server_info
    assert info is not None
    [icon] = info.icons or []
    assert icon.mime_type == "image/svg+xml"
    prefix = "data:image/svg+xml;base64,"
    assert icon.src.startswith(prefix)
    assert base64.b64decode(icon.src[len(prefix) :]).decode() == ICON_SVG


async def test_fixed_lists_carry_a_private_cache_hint_on_2026_connections(h: Harness, mode: str) -> None:
    # 2025-11-25 has no cache hints on the wire: the client reads its defaults (0 ms, private).
    expected = (LIST_TTL_MS, "private") if mode == "auto" else (0, "private")
    for result in (
        await h.mcp.list_tools(),
        await h.mcp.list_resources(),
        await h.mcp.list_resource_templates(),
        await h.mcp.list_prompts(),
    ):
        assert (result.ttl_ms, result.cache_scope) == expected
