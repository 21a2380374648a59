"""One-time confirm tokens for charges, for clients that cannot ask the user themselves.

With ``--confirm-charges`` and a client without elicitation, the first
``drip_charge`` returns a preview and a token; the charge goes through only when
the call is repeated with that token and identical arguments. A token is

    base64url(payload) "." hex(HMAC-SHA256(process secret, payload))

where the payload binds the exact charge (customer, meter, quantity, metadata),
the idempotency key to charge with, a nonce and an expiry. The secret is made
per process, so tokens die with it; each nonce is accepted once.

Redeeming is two steps so that a token is used up only by the charge it
authorises: `check` verifies everything (signature, expiry, arguments and the
idempotency key) without consuming anything, and `consume` marks the nonce used,
atomically, right before the charge is sent. `redeem` does both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drip_mcp.errors import ConfirmationError

__all__ = ["CONFIRM_TTL_S", "ConfirmTokens", "Confirmed"]

CONFIRM_TTL_S = 300.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: float


@dataclass(frozen=True)
class Confirmed:
    """A checked, not yet consumed, confirm token: the idempotency key it binds and its nonce."""

    idempotency_key: str
    nonce: str
    expires_at: float


class ConfirmTokens:
    """Issue and redeem HMAC confirm tokens (thread-safe, in memory)."""

    def __init__(self, ttl_s: float = CONFIRM_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = ttl_s
        self._clock = clock
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(args: Mapping[str, Any]) -> str:
        """A digest of the exact charge arguments (canonical JSON)."""
        canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def issue(self, args: Mapping[str, Any], idempotency_key: str) -> Issued:
        expires = self._clock() + self._ttl
        payload = {"f": self.fingerprint(args), "k": idempotency_key, "n": secrets.token_hex(8), "e": int(expires)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
        return Issued(f"{body}.{sig}", expires)

    def check(self, token: str, args: Mapping[str, Any], idempotency_key: str | None = None) -> Confirmed:
        """Verify `token` for `args` (and `idempotency_key`, when given) without consuming it."""
        body, _, sig = token.partition(".")
        expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
        if not sig or not hmac.compare_digest(sig, expected):
            raise ConfirmationError(
                "confirm_token is not valid for this server.", hint="Call drip_charge without it to get a new one."
            )
        payload = json.loads(_unb64(body))
        if payload["e"] < self._clock():
            raise ConfirmationError(
                "confirm_token has expired; nothing was charged.",
                code="CONFIRMATION_EXPIRED",
                hint="Call drip_charge again without confirm_token for a fresh preview and token.",
            )
        if payload["f"] != self.fingerprint(args):
            raise ConfirmationError(
                "confirm_token was issued for different charge arguments; nothing was charged.",
                code="CONFIRMATION_MISMATCH",
                hint="Repeat the confirmed call with exactly the arguments of the preview.",
            )
        if idempotency_key is not None and idempotency_key != payload["k"]:
            raise ConfirmationError(
                "idempotency_key differs from the one the confirmation was issued for; nothing was charged.",
                code="CONFIRMATION_MISMATCH",
                hint="Repeat the confirmed call with the preview's idempotency_key (or without one).",
            )
        confirmed = Confirmed(idempotency_key=payload["k"], nonce=payload["n"], expires_at=float(payload["e"]))
        with self._lock:
            if confirmed.nonce in self._used:
                raise self._reused()
        return confirmed

    def consume(self, confirmed: Confirmed) -> None:
        """Mark `confirmed` used (atomically: of concurrent callers, exactly one succeeds)."""
        now = self._clock()
        with self._lock:
            self._used = {n: e for n, e in self._used.items() if e >= now}
            if confirmed.nonce in self._used:
                raise self._reused()
            self._used[confirmed.nonce] = confirmed.expires_at

    def release(self, confirmed: Confirmed) -> None:
        """Give a consumed token back: the charge it authorised was refused, so nothing moved."""
        with self._lock:
            self._used.pop(confirmed.nonce, None)

    def redeem(self, token: str, args: Mapping[str, Any], idempotency_key: str | None = None) -> str:
        """Check and consume `token` for `args`; return the idempotency key it binds."""
        confirmed = self.check(token, args, idempotency_key)
        self.consume(confirmed)
        return confirmed.idempotency_key

    @staticmethod
    def _reused() -> ConfirmationError:
        return ConfirmationError(
            "confirm_token was already used; nothing more was charged.",
            code="CONFIRMATION_REUSED",
            hint="Each confirmation charges once. Ask the user again for another charge.",
        )
