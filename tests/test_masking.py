"""`drip_mcp.masking`: one rule to show a secret, one to find its echoes (any case, partial)."""

from __future__ import annotations

import pytest

from drip_mcp.masking import MIN_ECHO, SecretMasker, mask_key
from drip_mcp.redaction import scrub_text
from drip_mcp.tools.webhooks import mask_secret

KEY = "pk_live_Zq81xWm4Kd7Lp2Vn9f3a"
WHSEC = "whsec_0123456789abcdefGHIJklmn"
TOKEN = "tok_0123456789abcdefXYZW"


def assert_no_echo(text: str, secret: str) -> None:
    prefix_len = 8 if secret[:3] in ("pk_", "sk_") else 6 if secret.startswith("whsec_") else 0
    body = secret[prefix_len:].lower()
    folded = text.lower()
    for start in range(len(body) - MIN_ECHO + 1):
        assert body[start : start + MIN_ECHO] not in folded, text


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        KEY.upper(),
        KEY.lower(),
        KEY[:8] + KEY[8:].swapcase(),
        KEY[:20],
        KEY[:-1],
        KEY[3:],
        KEY[8 : 8 + MIN_ECHO],
        f"abc{KEY.upper()}def",
    ],
)
def test_any_echo_of_at_least_min_echo_body_characters_is_masked(echo: str) -> None:
    masker = SecretMasker([KEY])
    masked = masker.mask_text(f"upstream: {echo}!")
    assert_no_echo(masked, KEY)
    assert "pk_live_…9f3a" in masked
    assert masked.endswith("!")


def test_shorter_fragments_and_unrelated_text_are_left_alone() -> None:
    masker = SecretMasker([KEY])
    text = f"id {KEY[8 : 8 + MIN_ECHO - 1]} and pk_live_ keys"
    assert masker.mask_text(text) == text


def test_json_bodies_are_masked_in_values_keys_and_lists() -> None:
    masker = SecretMasker([KEY, WHSEC])
    body = {"error": KEY.upper(), "details": [{"path": "x", "message": WHSEC[:20].upper()}], KEY: 1, "n": 2}
    masked = masker.mask(body)
    for secret in (KEY, WHSEC):
        assert_no_echo(repr(masked), secret)
    assert masked["n"] == 2


def test_a_short_secret_is_masked_whole_in_any_case() -> None:
    masker = SecretMasker(["hunter2"])
    assert masker.mask_text("pw HUNTER2 and hunter") == "pw … and hunter"


def test_masking_is_idempotent() -> None:
    masker = SecretMasker([KEY, TOKEN])
    once = masker.mask_text(f"{KEY} {TOKEN.upper()}")
    assert masker.mask_text(once) == once


def test_one_display_rule_for_keys_webhook_secrets_and_scrubbed_text() -> None:
    assert mask_key(KEY) == "pk_live_…9f3a"
    assert mask_key(WHSEC) == mask_secret(WHSEC) == "whsec_…klmn"
    assert mask_key(TOKEN) == "tok…XYZW"
    assert mask_key("sk_test_abc") == "sk_test_…"
    assert scrub_text(f"key {KEY} end") == f"key {mask_key(KEY)} end"
