from __future__ import annotations

import hashlib
import hmac

from drip import verify_webhook_signature

from drip_mcp.signing import sign, verify

SECRET = "whsec_" + "a" * 40
BODY = b'{"id":"evt","type":"charge.succeeded","data":{}}'
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body_keyed_with_whole_secret() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={expected}"


def test_signed_payload_verifies() -> None:
    assert verify(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW)


def test_current_signature_verifies_with_published_sdk_verifier() -> None:
    assert verify_webhook_signature(BODY.decode(), sign(BODY, SECRET), SECRET)


def test_tampered_body_is_rejected() -> None:
    assert not verify(BODY + b" ", sign(BODY, SECRET, NOW), SECRET, now=NOW)


def test_wrong_secret_is_rejected() -> None:
    assert not verify(BODY, sign(BODY, SECRET, NOW), SECRET + "x", now=NOW)


def test_timestamps_beyond_tolerance_are_rejected_both_ways() -> None:
    header = sign(BODY, SECRET, NOW)
    assert verify(BODY, header, SECRET, now=NOW + 300)
    assert verify(BODY, header, SECRET, now=NOW - 300)
    assert not verify(BODY, header, SECRET, now=NOW + 301)
    assert not verify(BODY, header, SECRET, now=NOW - 301)
    assert verify(BODY, header, SECRET, now=NOW + 1000, tolerance_s=1000)


def test_malformed_headers_are_rejected() -> None:
    good = sign(BODY, SECRET, NOW)
    digest = good.split("v1=")[1]
    for header in (
        "",
        f"v1={digest}",
        f"t={NOW}",
        f"t=abc,v1={digest}",
        f"t={NOW}.5,v1={digest}",
        f"t={NOW},v1=",
        f"t={NOW},v1={digest[:-1]}é",
        "garbage",
    ):
        assert not verify(BODY, header, SECRET, now=NOW), header


def test_empty_secret_is_rejected() -> None:
    assert not verify(BODY, sign(BODY, "", NOW), "", now=NOW)
