"""One-time confirm tokens for charges, for clients that cannot ask the user themselves.

With ``--confirm-charges`` and a client without elicitation, the first
``drip_charge`` returns a preview and a token; the charge goes through only when
the call is repeated with that token and identical arguments. A token is

    base64url(payload) "." hex(HMAC-SHA256(process secret, payload))

where the payload binds the exact charge (customer, meter, quantity, metadata),
the idempotency key to charge with, a nonce and an expiry. The secret and the
used nonces live in the state store (`drip_mcp.state`): with ``--state-url``
every process of a fleet accepts a token, and each nonce exactly once across
all of them (the store's insert has one winner). The in-memory default makes
the secret per process, so tokens die with it.

Redeeming is two steps so that a token is used up only by the charge it
authorises: `check` verifies everything (signature, expiry, arguments and the
idempotency key) without consuming anything, and `consume` marks the nonce used,
atomically, right before the charge is sent; `release` gives it back when Drip
refused that charge. `redeem` does both steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drip_mcp.errors import ConfirmationError
from drip_mcp.state.base import NonceStore
from drip_mcp.state.sqlite import SqliteState

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
    """Issue and redeem HMAC confirm tokens; secret and used nonces in `store` (in memory by default)."""

    SECRET_NAME = "confirm-tokens"  # noqa: S105 - the secret's row name in the store, not a secret

    def __init__(
        self, ttl_s: float = CONFIRM_TTL_S, clock: Callable[[], float] = time.time, *, store: NonceStore | None = None
    ) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self.store: NonceStore = store if store is not None else SqliteState()
        self._secret: bytes | None = None

    async def _key(self) -> bytes:
        if self._secret is None:
            self._secret = await self.store.shared_secret(self.SECRET_NAME)
        return self._secret

    @staticmethod
    def fingerprint(args: Mapping[str, Any]) -> str:
        """A digest of the exact charge arguments (canonical JSON)."""
        canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def issue(self, args: Mapping[str, Any], idempotency_key: str) -> Issued:
        expires = self._clock() + self._ttl
        payload = {"f": self.fingerprint(args), "k": idempotency_key, "n": secrets.token_hex(8), "e": int(expires)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = hmac.new(await self._key(), body.encode(), hashlib.sha256).hexdigest()
        return Issued(f"{body}.{sig}", expires)

    async def check(self, token: str, args: Mapping[str, Any], idempotency_key: str | None = None) -> Confirmed:
        """Verify `token` for `args` (and `idempotency_key`, when given) without consuming it."""
        body, _, sig = token.partition(".")
        expected = hmac.new(await self._key(), body.encode(), hashlib.sha256).hexdigest()
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
        if await self.store.nonce_used(payload["n"], self._clock()):
            raise self._reused()
        return Confirmed(idempotency_key=payload["k"], nonce=payload["n"], expires_at=float(payload["e"]))

    @staticmethod
    def _reused() -> ConfirmationError:
        return ConfirmationError(
            "confirm_token was already used; nothing more was charged.",
            code="CONFIRMATION_REUSED",
            hint="Each confirmation charges once. Ask the user again for another charge.",
        )

    async def consume(self, confirmed: Confirmed) -> None:
        """Mark `confirmed` used: of concurrent callers (in every process sharing the store), exactly one wins."""
        if not await self.store.use_nonce(confirmed.nonce, confirmed.expires_at, self._clock()):
            raise self._reused()

    async def release(self, confirmed: Confirmed) -> None:
        """Give a consumed token back: the charge it authorised was refused, so nothing moved."""
        await self.store.release_nonce(confirmed.nonce)

    async def redeem(self, token: str, args: Mapping[str, Any], idempotency_key: str | None = None) -> str:
        """Check and consume `token` for `args`; return the idempotency key it binds."""
        confirmed = await self.check(token, args, idempotency_key)
        await self.consume(confirmed)
        return confirmed.idempotency_key
