"""Tenant keys at rest: AES-256-GCM under the operator's ``DRIP_MCP_STATE_KEY``.

A per-request-key tenant's outbox rows can only be delivered with its own key.
With an operator key configured, the key is stored sealed (nonce || ciphertext,
the fingerprint as associated data, so a sealed key cannot be moved to another
tenant's row); any process holding the operator key can then deliver the
tenant's rows while the tenant is not connected. Without one, nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import TYPE_CHECKING

from drip_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeySealer"]

_NONCE = 12


class KeySealer:
    """Seal and open tenant keys with one operator key (any string; 32 url-safe base64 bytes recommended)."""

    def __init__(self, operator_key: str) -> None:
        text = operator_key.strip()
        if not text:
            raise ConfigurationError("DRIP_MCP_STATE_KEY is empty")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raw = b""
        # cryptography is imported here, by the few servers that seal keys (~6 ms at start-up for the rest).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        # A 32-byte base64 key is used as is; anything else is stretched (a passphrase).
        self._aead: AESGCM = AESGCM(
            raw if len(raw) == 32 else hashlib.sha256(b"drip-mcp-state\0" + text.encode()).digest()
        )

    def seal(self, fingerprint: str, secret: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), fingerprint.encode())

    def open(self, fingerprint: str, sealed: bytes) -> str | None:
        """The key, or None when it was sealed under another operator key or for another tenant."""
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], fingerprint.encode()).decode()
        except (InvalidTag, ValueError):
            return None
