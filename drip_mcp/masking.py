"""Masking secrets: one rule to show a secret, one rule to find it in text.

*Showing* (`mask_key`): a known prefix (``pk_live_``, ``pk_test_``,
``sk_live_``, ``sk_test_``, ``rk_live_``, ``rk_test_``, ``whsec_``) is kept,
then ``…`` and the last 4 characters: ``sk_test_…9f3a``, ``whsec_…cdef``. A
secret without a known prefix shows its first 3 characters instead. When the
rest is shorter than 8 characters nothing of it is shown (``sk_test_…``, or
``…`` without a known prefix).

*Finding* (`SecretMasker`): a secret's *body* is what follows its known prefix
(the whole secret when it has none). Any run of text that shares at least
`MIN_ECHO` consecutive characters with the body is an echo of the secret and is
replaced by the secret's shown form, together with a prefix written right
before it. Matching ignores ASCII case, so ``SK_TEST_ZQ81...``, a mixed-case
copy, a key cut to its first 20 characters or with its tail cut off are all
found. A body shorter than `MIN_ECHO` (a short bearer token) is found only
whole, in any case. Shorter fragments are not masked: 11 characters of a
24-character random body leave too much unknown to be of use.

The client masks Drip's error bodies with it, the logging filter every record,
and the webhook tools show ``whsec_`` secrets with `mask_key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["KNOWN_PREFIXES", "MIN_ECHO", "SecretMasker", "mask_key", "split_prefix"]

KNOWN_PREFIXES = ("pk_live_", "pk_test_", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_")
MIN_ECHO = 12  # characters of a secret's body that identify an echo of it
_MIN_SHOWN_BODY = 8  # below this, no character of the body is shown
_SHOWN_TAIL = 4

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """ASCII lower case, same length as `text` (``str.lower`` may change the length of non-ASCII text)."""
    return text.translate(_ASCII_LOWER)


def split_prefix(secret: str) -> tuple[str, str]:
    """``("sk_test_", "<body>")``; ``("", secret)`` when `secret` has no known prefix."""
    for prefix in KNOWN_PREFIXES:
        if secret.startswith(prefix):
            return prefix, secret[len(prefix) :]
    return "", secret


def mask_key(raw: str) -> str:
    """Show a secret masked: ``sk_test_…9f3a``, ``whsec_…cdef``, ``tok…XYZW``; short ones ``sk_test_…`` or ``…``."""
    prefix, body = split_prefix(raw)
    if not prefix:
        prefix, body = raw[:3], raw[3:]
        if len(body) < _MIN_SHOWN_BODY:
            return "…"
    if len(body) < _MIN_SHOWN_BODY:
        return f"{prefix}…"
    return f"{prefix}…{body[-_SHOWN_TAIL:]}"


class _Secret:
    __slots__ = ("grams", "prefix", "shown", "width")

    def __init__(self, secret: str) -> None:
        prefix, body = split_prefix(secret)
        folded = _fold(body)
        self.prefix = _fold(prefix)
        self.shown = mask_key(secret)
        self.width = min(MIN_ECHO, len(folded))
        self.grams = frozenset(folded[i : i + self.width] for i in range(len(folded) - self.width + 1))

    def spans(self, folded: str) -> list[tuple[int, int]]:
        """Where `folded` (already ASCII-lower-cased) echoes this secret, merged, prefixes included."""
        width, grams = self.width, self.grams
        spans: list[tuple[int, int]] = []
        for i in range(len(folded) - width + 1):
            if folded[i : i + width] in grams:
                if spans and i <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], i + width)
                else:
                    spans.append((i, i + width))
        if self.prefix:
            spans = [
                (start - len(self.prefix), end) if folded.endswith(self.prefix, 0, start) else (start, end)
                for start, end in spans
            ]
        return spans


class SecretMasker:
    """Replaces every echo of the secrets it was given (see the module docstring) with their shown form."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: dict[str, _Secret] = {}
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets[secret] = _Secret(secret)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def mask_text(self, text: str) -> str:
        """`text` with every echo of a secret replaced by the secret's shown form."""
        for secret in self._secrets.values():
            if len(text) < secret.width:
                continue
            spans = secret.spans(_fold(text))
            if not spans:
                continue
            parts: list[str] = []
            last = 0
            for start, end in spans:
                parts += [text[last:start], secret.shown]
                last = end
            parts.append(text[last:])
            text = "".join(parts)
        return text

    def mask(self, value: Any) -> Any:
        """`value` (a parsed JSON body: str, list, dict, scalars) with every string masked, keys included."""
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value
