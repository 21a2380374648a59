"""Webhook signing secrets stay out of the model's context unless the user asks for them."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import MODES, Harness, assert_ok, open_harness, read_secret_file

from drip_mcp.settings import resolve_state_dir

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:9/drip"  # loopback: the sandbox refuses other webhook hosts by default


@pytest.fixture(params=MODES)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, request.param) as harness:
        yield harness


def assert_masked(out: dict[str, Any], secret: str, text: str) -> Path:
    """The secret is masked in the result, absent from its JSON, and in full in a 0600 file in the state dir."""
    assert out["secret"] is None
    masked = out["secret_masked"]
    assert masked.startswith("whsec_")
    assert "…" in masked
    assert masked.endswith(secret[-4:])
    assert secret not in text
    assert secret not in json.dumps(out)
    path = Path(out["secret_file"])
    assert path.is_relative_to(resolve_state_dir(os.environ))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text(encoding="utf-8").strip() == secret
    return path


async def test_create_webhook_returns_the_secret_masked_and_saves_it_to_a_private_file(h: Harness) -> None:
    result = await h.call("drip_create_webhook", {"url": URL, "events": ["*"]})
    out = assert_ok("drip_create_webhook", result)
    secret = h.store.webhook(out["webhook"]["id"])["secret"]
    assert secret.startswith("whsec_")
    path = assert_masked(out, secret, result.content[0].text)
    assert path.name == f"{out['webhook']['id']}.secret"


async def test_create_webhook_with_reveal_secret_returns_it_in_full(h: Harness) -> None:
    out = await h.ok("drip_create_webhook", {"url": URL, "events": ["*"], "reveal_secret": True})
    secret = h.store.webhook(out["webhook"]["id"])["secret"]
    assert out["secret"] == secret
    assert read_secret_file(out["secret_file"]) == secret


async def test_rotate_webhook_secret_returns_the_new_secret_masked(h: Harness) -> None:
    created = await h.ok("drip_create_webhook", {"url": URL, "events": ["*"]})
    webhook_id = created["webhook"]["id"]
    result = await h.call("drip_rotate_webhook_secret", {"webhook_id": webhook_id})
    out = assert_ok("drip_rotate_webhook_secret", result)
    secret = h.store.webhook(webhook_id)["secret"]
    path = assert_masked(out, secret, result.content[0].text)
    assert str(path) == created["secret_file"]
    assert out["secret_masked"] != created["secret_masked"]


async def test_rotate_webhook_secret_with_reveal_secret_returns_it_in_full(h: Harness) -> None:
    created = await h.ok("drip_create_webhook", {"url": URL, "events": ["*"]})
    webhook_id = created["webhook"]["id"]
    out = await h.ok("drip_rotate_webhook_secret", {"webhook_id": webhook_id, "reveal_secret": True})
    assert out["secret"] == h.store.webhook(webhook_id)["secret"]


async def test_list_and_get_webhook_never_return_the_secret(h: Harness) -> None:
    created = await h.ok("drip_create_webhook", {"url": URL, "events": ["*"]})
    webhook_id = created["webhook"]["id"]
    secret = h.store.webhook(webhook_id)["secret"]
    for name, args in (("drip_list_webhooks", {}), ("drip_get_webhook", {"webhook_id": webhook_id})):
        result = await h.call(name, args)
        assert secret not in result.content[0].text
