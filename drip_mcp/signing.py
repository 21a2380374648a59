"""Webhook signatures in the format the published Drip SDKs verify.

The header ``X-Drip-Signature`` carries ``t=<unix seconds>,v1=<hex>``, where
``hex`` is the lowercase HMAC-SHA256 of ``"<t>.<raw body>"`` keyed with the
whole webhook secret (``whsec_...``) encoded as UTF-8, with no base64 decoding.
The sandbox signs its deliveries with `sign`; receivers and tests check them
with `verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Drip-Signature"


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return the ``X-Drip-Signature`` header value for `payload` (now, unless `timestamp`)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={_digest(payload, secret, ts)}"


def _parse_header(header: str) -> tuple[int, str] | None:
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep and name in ("t", "v1") and name not in fields:
            fields[name] = value
    timestamp, signature = fields.get("t"), fields.get("v1")
    if not timestamp or not signature or not timestamp.lstrip("-").isdigit():
        return None
    return int(timestamp), signature


def verify(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """Check `header` against `payload` and `secret` in constant time.

    Rejects a header without both ``t`` and ``v1``, a non-integer ``t``, and a
    timestamp more than `tolerance_s` seconds away from `now` in either
    direction.
    """
    parsed = _parse_header(header) if header and secret else None
    if parsed is None:
        return False
    timestamp, signature = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(payload, secret, timestamp).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
