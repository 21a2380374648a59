"""Drip API keys: parsing, type and mode, masking.

A key is ``pk_live_``, ``pk_test_``, ``sk_live_`` or ``sk_test_`` followed by at
least eight letters, digits, ``_`` or ``-``. ``pk_`` keys are *public* (usage,
runs, customers, billing reads); ``sk_`` keys are *secret* and additionally
manage webhooks. The mode (live/test) is part of the prefix.

The raw key lives in exactly one place, `ApiKey`, and leaves it only through
`ApiKey.reveal()` (called by the HTTP client to build the ``Authorization``
header). ``repr()``, ``str()`` and f-strings show the masked form
``sk_test_…9f3a`` (the one masking rule, `drip_mcp.masking`).

A malformed key is refused with `key_format_problem`'s words, which say what a
valid key looks like and never repeat the key.
"""

from __future__ import annotations

import enum
import hashlib
import re

from drip_mcp.errors import ConfigurationError
from drip_mcp.masking import mask_key

__all__ = ["KEY_FORMAT_HINT", "ApiKey", "KeyMode", "KeyType", "key_format_problem", "mask_key"]

KEY_FORMAT_HINT = "expected pk_live_..., pk_test_..., sk_live_... or sk_test_... followed by at least 8 characters"
_KEY_RE = re.compile(r"(?P<type>pk|sk)_(?P<mode>live|test)_[A-Za-z0-9_-]{8,}")
_PREFIX_RE = re.compile(r"(?:pk|sk)_(?:live|test)_")
_REST_RE = re.compile(r"[A-Za-z0-9_-]*")
_MIN_REST = 8


def key_format_problem(raw: str) -> str | None:
    """What is wrong with `raw` as a Drip key, in words that never repeat it; None for a valid key.

    With a valid prefix the words name it and what must follow, e.g. "after pk_test_ it needs at
    least 8 of A-Z a-z 0-9 _ -, e.g. pk_test_local_dev_key (it has 3 characters)".
    """
    if _KEY_RE.fullmatch(raw):
        return None
    prefix = _PREFIX_RE.match(raw)
    if prefix is None:
        return KEY_FORMAT_HINT
    head = prefix.group(0)
    rest = raw[len(head) :]
    if not _REST_RE.fullmatch(rest):
        found = "it has characters outside that set"
    else:
        found = f"it has {len(rest)} character{'' if len(rest) == 1 else 's'}"
    return f"after {head} it needs at least {_MIN_REST} of A-Z a-z 0-9 _ -, e.g. {head}local_dev_key ({found})"


class KeyType(str, enum.Enum):
    """What a key may do: public keys cannot manage webhooks."""

    PUBLIC = "public"
    SECRET = "secret"  # noqa: S105 - a key type, not a password

    @property
    def prefix(self) -> str:
        return "pk_" if self is KeyType.PUBLIC else "sk_"


class KeyMode(str, enum.Enum):
    """Whether a key moves real money (live) or not (test)."""

    TEST = "test"
    LIVE = "live"


class ApiKey:
    """A validated Drip API key that never shows itself in full by accident."""

    __slots__ = ("_raw", "fingerprint", "mode", "type")

    def __init__(self, raw: str) -> None:
        match = _KEY_RE.fullmatch(raw.strip())
        if match is None:
            problem = key_format_problem(raw.strip()) if raw.strip() else "it is empty"
            if problem != KEY_FORMAT_HINT:
                problem = f"{problem}; {KEY_FORMAT_HINT}"
            raise ConfigurationError(f"DRIP_API_KEY is malformed: {problem}")
        self._raw = match.group(0)
        self.type = KeyType.PUBLIC if match.group("type") == "pk" else KeyType.SECRET
        self.mode = KeyMode.LIVE if match.group("mode") == "live" else KeyMode.TEST
        # A one-way tag of the key (SHA-256, truncated): tells keys apart without storing or logging them.
        # Computed once: every call's tenant is derived from it.
        self.fingerprint = hashlib.sha256(b"drip-mcp-key\0" + self._raw.encode()).hexdigest()[:24]

    @property
    def masked(self) -> str:
        return mask_key(self._raw)

    @property
    def is_live(self) -> bool:
        return self.mode is KeyMode.LIVE

    def reveal(self) -> str:
        """The raw key, for the ``Authorization`` header and nothing else."""
        return self._raw

    def __repr__(self) -> str:
        return f"ApiKey({self.masked!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)
