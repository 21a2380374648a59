"""Keep PII, secrets and raw content out of the metadata sent to Drip.

Metadata attached to usage events, charges and customers must carry
*operational context only* (model, tool, status, latency, token counts, ...):
never PII, secrets, raw prompts, model outputs or environment variables.
`sanitize_metadata` enforces that on every call that carries metadata, and
`scrub_text` masks secrets in free text (log lines, error messages).

Two policies (`MetadataPolicy`):

* ``REDACT`` (default): an offending value is replaced by the string
  ``"[REDACTED]"`` and its path is listed in `Sanitized.redacted_paths`.
* ``STRICT``: any offending value rejects the whole call with
  `MetadataRejected` (``reason="sensitive"``) naming every offending path.

Size limits (`RedactionLimits`: serialized bytes, nesting depth, total keys,
string length) and non-JSON values (NaN/Infinity, bytes, sets, Decimals,
arbitrary objects, non-string keys, integers outside 64 bits) raise
`MetadataRejected` under *both* policies: nothing is silently truncated.

Value rule
----------
Every string (and every key name) is checked by `looks_sensitive`: Drip/Stripe
keys (``sk_live_``/``sk_test_``/``pk_live_``/``pk_test_``/``rk_live_``),
webhook secrets (``whsec_``), ``Bearer``/``Basic`` credentials, JWTs, AWS access
key ids, GitHub, Slack, OpenAI, Anthropic and Google keys, PEM private keys,
credentials in URLs (``scheme://user:pass@``, ``?api_key=``), ``password=...``
assignments, email addresses, card numbers, phone numbers, US SSNs and IBANs.
Integers are checked for card numbers only. Card numbers need a known brand
prefix *and* the brand's length *and* a valid Luhn checksum, so Unix
timestamps (``1732370000``, ``1732370000123``) and hex digests never match;
phone numbers need a leading ``+`` or separators (``415-555-2671``,
``020 7946 0958``), so bare digit runs never match.

Key-name rule
-------------
A key is split into lower-case words at ``_``, ``-``, ``.``, spaces, camelCase
humps and letter/digit boundaries (``x-api-key`` -> x, api, key;
``userEmail`` -> user, email).  It is then classed:

* **secret/PII key** - it contains a secret or PII word (token, auth,
  authorization, session, cookie, credential, password, passwd, pwd, secret,
  email, phone, address, ssn, cvv, iban, ip, dob, env, environment, ...), a
  pair such as api+key, access+key, private+key, card+number, credit+card,
  first+name, or a glued form (apikey, accesstoken, creditcard, ...).
* **content key** - it names raw model I/O: prompt, completion, messages,
  transcript, conversation anywhere in the key, or input, output, response,
  text, content, body, payload, message, query, question, answer, reply,
  history as its *last* word (so ``input_type`` and ``content_type`` are
  benign, ``user_input`` and ``response_text`` are content).  Keys starting
  with error/status/exception (``error_message``, ``status_text``) are not
  content keys.
* anything else is benign.

Then, by key class and value:

* booleans and ``null`` are never redacted because of their key (one bit
  cannot leak a secret); all other values still get the value rule.
* a secret/PII key is redacted, **unless** it is *measure-named* and its
  value is numeric.  Measure-named means the last word is a unit or count
  (tokens, count, total, ms, s, seconds, len, length, chars, bytes, size,
  pct, ratio, rate, cost, usd, limit, max, retries, ttl, ...) or the first word
  is num/n/count/total/max/min.  Numeric means a number, a numeric string such
  as ``"850ms"``, or a list/object holding only those.  So
  ``token_count: 12`` and ``session_ms: 80`` pass; ``api_token: "abc"``,
  ``password: 1234`` and ``token_count: "abc"`` are redacted.
  Identifier suffixes do **not** exempt secret/PII keys: ``session_id``,
  ``token_id`` and ``email_hash`` are redacted (a session id is a bearer
  credential; use ``run_id``/``trace_id`` for correlation).
* a content key is redacted **unless** its value is numeric (raw text cannot
  hide in a number: ``prompt_tokens: 120``, ``completion_tokens: 80``,
  ``prompt_tokens_details: {"cached_tokens": 0}``; ``input_tokens`` and
  ``output_tokens`` are not content keys at all), or the key is *label-named*
  (last word id, ids, uuid, version, name, type, kind, format, mode, model,
  hash, status, reason, source, lang, role, at, time, ts, date) and the value
  is a string of at most 256 characters: ``prompt_id``, ``prompt_version``,
  ``completion_model`` pass; ``prompt: "write me a poem"`` and
  ``messages: [...]`` are redacted.

* a key whose own text looks like a secret or PII (``{"sk_live_…": 1}``,
  ``{"jane@example.com": 3}``) turns the whole entry into
  ``"[REDACTED]": "[REDACTED]"``; its path shows the key masked.

Paths look like ``metadata.a.b[3].c``; keys other than ``[A-Za-z0-9_-]+``
are quoted (``metadata["user.email"]``), so paths are unambiguous.

`is_sensitive_key` answers the name-only question ("would a string value under
this key be redacted because of the key?"); it is false for
``prompt_tokens``, ``token_count``, ``prompt_id`` and true for ``prompt``,
``api_token``, ``Authorization``, ``x-api-key``, ``env``.

Everything is compiled lazily on first use (`_rx`), so importing this module
is cheap.  Key-name verdicts and short strings found benign are cached
(bounded; secret-looking text is never cached), and each pattern only runs on
strings that contain its trigger (``@``, ``sk_``, three digits, ...).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "REDACTED",
    "MetadataPolicy",
    "MetadataRejected",
    "RedactionLimits",
    "Sanitized",
    "is_sensitive_key",
    "looks_sensitive",
    "sanitize_metadata",
    "scrub_text",
]

REDACTED = "[REDACTED]"


class MetadataPolicy(str, enum.Enum):
    """What to do with sensitive metadata."""

    REDACT = "redact"  # default: replace offending values with "[REDACTED]"
    STRICT = "strict"  # reject the whole call


@dataclass(frozen=True)
class RedactionLimits:
    """Caps applied to one metadata object (under every policy)."""

    max_bytes: int = 16_384  # serialized JSON size (compact, UTF-8) of one metadata object
    max_depth: int = 5  # the top-level object is depth 1
    max_keys: int = 200  # total keys across the object, nested ones included
    max_string_length: int = 2_048  # characters, for values and keys


@dataclass(frozen=True)
class Sanitized:
    """The outcome of `sanitize_metadata`."""

    value: dict[str, Any] | None  # the cleaned metadata (a new object; the input is never mutated)
    redacted_paths: tuple[str, ...]  # e.g. ("metadata.user_email", "events[2].metadata.auth")


_ADVICE = "send only operational context such as model, tool, status, latency or token counts"

_REASON_TEXT = {
    "sensitive": "sensitive {noun} {fields}: metadata must not carry PII, secrets, raw prompts/outputs "
    "or environment data; remove {them} and " + _ADVICE,
    "too_large": "{fields} serializes to {detail}; send less: " + _ADVICE,
    "too_deep": "{fields} is nested deeper than {detail} levels; flatten the metadata",
    "too_many_keys": "{fields} has too many keys: metadata may hold at most {detail} keys in total, "
    "nested ones included; send fewer fields",
    "not_json": "{fields} {detail}",
    "string_too_long": "{fields} {detail}; metadata is for operational context, not content",
}


class MetadataRejected(ValueError):
    """Metadata broke the policy; nothing may be sent.

    ``reason`` is one of ``"sensitive"``, ``"too_large"``, ``"too_deep"``,
    ``"too_many_keys"``, ``"not_json"``, ``"string_too_long"``; ``paths`` are
    the offending fields; ``str(exc)`` is a one-line message for an AI agent
    saying which fields, why, and what to do.  It never contains the values.
    """

    paths: tuple[str, ...]
    reason: str
    kinds: tuple[str, ...]

    def __init__(
        self,
        reason: str,
        paths: tuple[str, ...] | list[str],
        *,
        detail: str = "",
        kinds: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.reason = reason
        self.paths = tuple(paths)
        self.kinds = tuple(kinds)
        super().__init__(self._render(detail))

    def _render(self, detail: str) -> str:
        shown = list(self.paths[:5])
        if self.kinds and len(self.kinds) == len(self.paths):
            shown = [f"{p} ({k})" for p, k in zip(self.paths[:5], self.kinds[:5], strict=True)]
        fields = ", ".join(shown) or "metadata"
        if len(self.paths) > 5:
            fields += f" and {len(self.paths) - 5} more"
        text = _REASON_TEXT.get(self.reason, "{fields}: {detail}").format(
            fields=fields,
            detail=detail,
            them="it" if len(self.paths) == 1 else "them",
            noun="field" if len(self.paths) == 1 else "fields",
        )
        return "metadata rejected: " + " ".join(text.split())


# --------------------------------------------------------------------------- patterns

# Kinds that become "first 8 + … + last 4" in scrub_text; everything else is [REDACTED].
_PARTIAL_MASK_KINDS = frozenset({"drip_key"})
_DRIP_KEY = 3  # index of the drip_key pattern in _PATTERNS

# Cheap features of a string; a pattern only runs when the string has all the
# features it needs (each feature is a necessary condition for the pattern to match).
_F_BEGIN = 1 << 0  # "-----BEGIN "
_F_EYJ = 1 << 1  # "eyJ"
_F_URL = 1 << 2  # "://" and "@"
_F_LIVETEST = 1 << 3  # "k_live_" or "k_test_"
_F_WHSEC = 1 << 4  # "whsec_"
_F_GH = 1 << 5  # "gh" and "_"
_F_XOX = 1 << 6  # "xox"
_F_SLACKHOOK = 1 << 7  # "hooks.slack.com"
_F_SKDASH = 1 << 8  # "sk-"
_F_AIZA = 1 << 9  # "AIza"
_F_A20 = 1 << 10  # "A" and at least 20 characters
_F_BEARER = 1 << 11  # "bearer", any case
_F_BASIC = 1 << 12  # "basic", any case
_F_EQ = 1 << 13  # "="
_F_ASSIGN = 1 << 14  # "=" or ":", and pass/pwd/secret/key/token in any case
_F_AT = 1 << 15  # "@"
_F_IBAN = 1 << 16  # an upper-case ASCII letter and at least 15 characters
_F_DASH = 1 << 17  # "-"
_F_PLUS = 1 << 19  # "+"
_F_PAREN = 1 << 20  # "("
_F_DIGITS = 1 << 21  # a candidate for one of the digit patterns (SSN, card, formatted phone)

# "Not preceded by an ASCII letter or digit", written *after* the first character
# (a 2-wide look-behind) so the pattern starts with a literal or a class and the
# regex engine can skip quickly to candidate positions.
_NB = r"(?<![A-Za-z0-9][\s\S])"

# (kind, pattern, needed features).  Order is priority: earlier kinds win where
# matches overlap.  Patterns whose match is "<prefix><secret>" name the parts
# (?P<p>...) (kept by scrub_text) and (?P<v>...) (masked).  Every pattern is
# anchored by a literal or a look-behind, so scanning stays linear.
_PATTERNS: tuple[tuple[str, str, int], ...] = (
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?s:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*)",
        _F_BEGIN,
    ),
    ("jwt", r"e(?<![A-Za-z0-9_-]e)yJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", _F_EYJ),
    (
        "url_credentials",
        r"(?P<p>[A-Za-z](?<![A-Za-z0-9+.-][A-Za-z])[A-Za-z0-9+.-]*://)(?P<v>[^\s/:@]+:[^\s/@]+)@",
        _F_URL,
    ),
    ("drip_key", r"[sp]" + _NB + r"k_(?:live|test)_[A-Za-z0-9][A-Za-z0-9_-]{5,}", _F_LIVETEST),
    ("stripe_key", r"r" + _NB + r"k_(?:live|test)_[A-Za-z0-9][A-Za-z0-9_-]{5,}", _F_LIVETEST),
    ("webhook_secret", r"w" + _NB + r"hsec_[A-Za-z0-9+/=_-]{6,}", _F_WHSEC),
    ("github_token", r"g" + _NB + r"(?:h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_[A-Za-z0-9_]{20,})", _F_GH),
    ("slack_token", r"x" + _NB + r"ox[abposre]-[A-Za-z0-9-]{10,}", _F_XOX),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{8,}", _F_SLACKHOOK),
    ("anthropic_key", r"s" + _NB + r"k-ant-[A-Za-z0-9_-]{16,}", _F_SKDASH),
    ("openai_key", r"s" + _NB + r"k-[A-Za-z0-9_-]{20,}", _F_SKDASH),
    ("google_api_key", r"A" + _NB + r"Iza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])", _F_AIZA),
    (
        "aws_access_key",
        r"A(?<![A-Z0-9]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA)[0-9A-Z]{16}(?![0-9A-Z])",
        _F_A20,
    ),
    ("bearer_token", r"(?P<p>[Bb]" + _NB + r"(?i:earer)\s+)(?P<v>[A-Za-z0-9._~+/-]{8,}=*)", _F_BEARER),
    ("basic_auth", r"(?P<p>[Bb]" + _NB + r"(?i:asic)\s+)(?P<v>[A-Za-z0-9+/]{8,}={0,2})", _F_BASIC),
    (
        "secret_param",
        r"(?P<p>[?&;](?i:api[_-]?key|access[_-]?token|auth[_-]?token|id[_-]?token|token|secret"
        r"|client[_-]?secret|password|passwd|sig|signature|x-amz-signature|x-amz-credential"
        r"|x-amz-security-token)=)(?P<v>[^&\s#\"'<>]+)",
        _F_EQ,
    ),
    (
        "secret_assignment",
        r"(?P<p>(?<![A-Za-z0-9])(?i:password|passwd|pwd|passphrase|secret|client[_-]?secret"
        r"|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|private[_-]?key"
        r"|secret[_-]?access[_-]?key)[\"']?\s*[:=]\s*[\"']?)(?P<v>[^\s\"',;\[\]…]{4,})",
        _F_ASSIGN,
    ),
    (
        "email",
        r"(?<![A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        r"(?![A-Za-z0-9-])",
        _F_AT,
    ),
    (
        "iban",
        r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])",
        _F_IBAN,
    ),
    ("ssn", r"[0-9](?<![0-9-][0-9])[0-9]{2}-[0-9]{2}-[0-9]{4}(?![0-9-])", _F_DASH | _F_DIGITS),
    ("card_number", r"[0-9](?<![0-9A-Za-z+-][0-9])[0-9]{3}(?:[ -]?[0-9]){9,15}(?![0-9A-Za-z-])", _F_DIGITS),
    (
        "phone",  # international: E.164 or +CC with separators, e.g. "+44 (0)20 7946 0958"
        r"\+(?<![\w+]\+)[1-9](?:[0-9]{7,14}(?![0-9])"
        r"|[0-9]{0,3}(?:[ .-]?\([0-9]{1,4}\)[ .-]?[0-9]{1,10})?(?:[ .-][0-9]{1,10}){1,6}(?![0-9]))",
        _F_PLUS,
    ),
    ("phone", r"\((?<![\w+.-]\()[0-9]{3}\) ?[0-9]{3}[-. ][0-9]{4}(?![\w-])", _F_PAREN | _F_DIGITS),  # (415) 555-2671
    ("phone", r"[0-9](?<![\w+.-][0-9])[0-9]{2}[-. ][0-9]{3}[-. ][0-9]{4}(?![\w-])", _F_DIGITS),  # 415-555-2671
    ("phone", r"0(?<![\w+.-]0)[1-9][0-9]{1,3}[ -][0-9]{3,4}(?:[ -]?[0-9]{3,4})?(?![\w-])", _F_DIGITS),  # UK
)


def _features(s: str) -> int:
    f = 0
    if "-" in s:
        f |= _F_DASH
        if "-----BEGIN " in s:
            f |= _F_BEGIN
        if "sk-" in s:
            f |= _F_SKDASH
    if "_" in s:
        if "k_live_" in s or "k_test_" in s:
            f |= _F_LIVETEST
        if "whsec_" in s:
            f |= _F_WHSEC
        if "gh" in s or "github_pat_" in s:
            f |= _F_GH
    if "@" in s:
        f |= _F_AT
        if "://" in s:
            f |= _F_URL
    if "eyJ" in s:
        f |= _F_EYJ
    if "xox" in s:
        f |= _F_XOX
    if "hooks.slack.com" in s:
        f |= _F_SLACKHOOK
    if "+" in s:
        f |= _F_PLUS
    if "(" in s:
        f |= _F_PAREN
    if "=" in s:
        f |= _F_EQ
    n = len(s)
    if n >= 15 and not s.islower():
        if "A" in s:
            if "AIza" in s:
                f |= _F_AIZA
            if n >= 20:
                f |= _F_A20
        if _rx().iban_start.search(s) is not None:
            f |= _F_IBAN
    low = s.lower()
    if "bearer" in low:
        f |= _F_BEARER
    if "basic" in low:
        f |= _F_BASIC
    if ("=" in s or ":" in s) and ("pass" in low or "pwd" in low or "secret" in low or "key" in low or "token" in low):
        f |= _F_ASSIGN
    if _rx().digits.search(s) is not None:
        f |= _F_DIGITS
    return f


class _Rx(NamedTuple):
    kinds: tuple[re.Pattern[str], ...]
    digits: re.Pattern[str]
    iban_start: re.Pattern[str]
    words: re.Pattern[str]
    camel1: re.Pattern[str]
    camel2: re.Pattern[str]
    numeric: re.Pattern[str]
    plain_key: re.Pattern[str]


@functools.cache
def _rx() -> _Rx:
    """Compile every pattern once, on first use (so importing the module stays cheap)."""
    return _Rx(
        kinds=tuple(re.compile(p, re.ASCII) for _, p, _ in _PATTERNS),
        # The union of the digit patterns: one search rules them all out at once.
        digits=re.compile("|".join(f"(?:{p})" for _, p, needs in _PATTERNS if needs & _F_DIGITS), re.ASCII),
        iban_start=re.compile(r"[A-Z]{2}[0-9]{2}"),
        words=re.compile(r"[a-z]+|[0-9]+"),
        camel1=re.compile(r"([A-Z]+)([A-Z][a-z])"),
        camel2=re.compile(r"([a-z0-9])([A-Z])"),
        numeric=re.compile(r"\s*[+-]?[0-9][0-9,_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\s*(?:[A-Za-zµ%/]{1,8})?\s*"),
        plain_key=re.compile(r"[A-Za-z0-9_-]+"),
    )


@functools.lru_cache(maxsize=256)
def _indices(features: int) -> tuple[int, ...]:
    """The patterns (by index, in priority order) worth running on a string with these features."""
    return tuple(i for i, (_, _, needs) in enumerate(_PATTERNS) if features & needs == needs)


@functools.lru_cache(maxsize=64)
def _combined(indices: tuple[int, ...]) -> re.Pattern[str]:
    """One alternation of the given patterns (in priority order), for scrub_text."""
    parts = []
    for i in indices:
        pattern = _PATTERNS[i][1].replace("(?P<p>", f"(?P<p{i}>").replace("(?P<v>", f"(?P<v{i}>")
        parts.append(f"(?P<k{i}>{pattern})")
    return re.compile("|".join(parts), re.ASCII)


# --------------------------------------------------------------------------- validators


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """A known issuer prefix (IIN) with that brand's length."""
    n = len(digits)
    d1 = digits[0]
    p2 = int(digits[:2])
    p3 = int(digits[:3])
    p4 = int(digits[:4])
    if d1 == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # Amex
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649:  # Discover
        return 16 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 == 35:  # JCB
        return 16 <= n <= 19
    if p2 in (36, 38, 30):  # Diners Club
        return 14 <= n <= 19
    return False


def _is_card_digits(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_brand_ok(digits) and _luhn_ok(digits)


def _valid_card(text: str) -> bool:
    return _is_card_digits(text.replace(" ", "").replace("-", ""))


def _valid_iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _valid_phone(text: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in text) <= 16


def _valid_ssn(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_PLACEHOLDER_CHARS = "*xX•.<>{}$"


def _valid_assignment(text: str) -> bool:
    """``password=…`` / ``api_key: …`` with a real-looking value, not a placeholder like
    ``sk_test_...``, ``***``, ``<your-key>`` or ``${API_KEY}``."""
    value = text.replace("=", ":", 1).split(":", 1)[1].strip(" \t\"'")
    return "..." not in value and value.strip(_PLACEHOLDER_CHARS) != "" and value[0] not in "<$"


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _valid_openai(text: str) -> bool:
    return _has_digit(text[3:])


def _valid_bearer(text: str) -> bool:
    return _has_digit(text.split(None, 1)[-1])


def _valid_basic(text: str) -> bool:
    token = text.split(None, 1)[-1]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "card_number": _valid_card,
    "iban": _valid_iban,
    "phone": _valid_phone,
    "ssn": _valid_ssn,
    "openai_key": _valid_openai,
    "bearer_token": _valid_bearer,
    "basic_auth": _valid_basic,
    "secret_assignment": _valid_assignment,
}

# Shorter strings cannot hold anything we detect ("a@b.co" is the shortest).
_MIN_SENSITIVE_LEN = 6


def _check(kind: str, text: str) -> bool:
    validator = _VALIDATORS.get(kind)
    return validator is None or validator(text)


_BENIGN_CACHE: dict[str, None] = {}  # short strings already found benign (never secrets)
_BENIGN_CACHE_MAX = 4096
_BENIGN_CACHE_LEN = 64


def looks_sensitive(value: str) -> str | None:
    """Return the kind of secret/PII found in `value` (e.g. ``"email"``,
    ``"card_number"``, ``"drip_key"``, ``"jwt"``), or None if it looks benign."""
    if len(value) < _MIN_SENSITIVE_LEN or value in _BENIGN_CACHE:
        return None
    features = _features(value)
    if features:
        kinds = _rx().kinds
        for i in _indices(features):
            kind = _PATTERNS[i][0]
            for m in kinds[i].finditer(value):
                if _check(kind, m.group()):
                    return kind
    if len(value) <= _BENIGN_CACHE_LEN:
        if len(_BENIGN_CACHE) >= _BENIGN_CACHE_MAX:
            _BENIGN_CACHE.clear()
        _BENIGN_CACHE[value] = None
    return None


def _scrub_sub(m: re.Match[str]) -> str:
    name = m.lastgroup
    assert name is not None
    i = int(name[1:])
    kind = _PATTERNS[i][0]
    text = m.group()
    if not _check(kind, text):
        return text
    if kind in _PARTIAL_MASK_KINDS:
        return _partial_mask(text)
    if f"v{i}" not in m.re.groupindex:
        return REDACTED
    secret = m.group(f"v{i}")
    # Keep the friendlier mask when the secret is itself a Drip key ("Bearer sk_test_…9f3a").
    masked = _partial_mask(secret) if _rx().kinds[_DRIP_KEY].fullmatch(secret) else REDACTED
    start = m.start()
    return text[: m.start(f"v{i}") - start] + masked + text[m.end(f"v{i}") - start :]


def _partial_mask(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}" if len(key) > 12 else REDACTED


def scrub_text(text: str) -> str:
    """Mask secret- or PII-looking substrings in free text (log lines, error messages).

    Drip keys keep their first 8 and last 4 characters (``sk_test_…9f3a``); for
    ``Bearer``/``Basic``/``password=``/``?api_key=``/``user:pass@`` only the
    secret part is masked; everything else detected becomes ``[REDACTED]``.
    """
    if len(text) < _MIN_SENSITIVE_LEN:
        return text
    features = _features(text)
    if not features:
        return text
    indices = _indices(features)
    if not indices:
        return text
    return _combined(indices).sub(_scrub_sub, text)


# --------------------------------------------------------------------------- key names

# Secret/PII words: a key containing any of these words is a secret/PII key.
_SECRET_WORDS = frozenset(
    {
        "token", "auth", "authorization", "authorisation", "session", "sessions", "sessionid",
        "cookie", "cookies", "credential", "credentials", "creds", "password", "passwords", "passwd",
        "pwd", "passphrase", "passcode", "secret", "secrets", "apikey", "apikeys", "jwt", "bearer",
        "otp", "email", "emails", "mail", "phone", "phones", "telephone", "phonenumber", "msisdn",
        "address", "addresses", "ssn", "cvv", "cvv2", "cvc", "iban", "ip", "dob", "birthdate",
        "birthday", "passport", "surname", "firstname", "lastname", "fullname", "username",
        "postcode", "zipcode", "env", "environment", "environ", "dotenv", "dsn", "cardholder",
    }
)  # fmt: skip
# Secret/PII word pairs (adjacent words).
_SECRET_PAIRS = frozenset(
    {
        *(
            (w, "key")
            for w in (
                "api", "access", "private", "secret", "signing", "encryption", "master", "license",
                "session", "client", "auth", "ssh", "gpg", "pgp", "deploy", "webhook", "account",
            )
        ),
        *((w, "keys") for w in ("api", "access", "private", "secret", "signing", "ssh")),
        ("card", "number"), ("card", "num"), ("card", "no"), ("cc", "number"), ("cc", "num"),
        ("credit", "card"), ("debit", "card"), ("card", "cvv"), ("security", "code"),
        ("social", "security"), ("tax", "id"), ("national", "id"),
        ("first", "name"), ("last", "name"), ("full", "name"), ("given", "name"), ("family", "name"),
        ("user", "name"), ("display", "name"), ("zip", "code"), ("postal", "code"), ("date", "birth"),
        ("connection", "string"), ("conn", "str"),
    }
)  # fmt: skip
# Glued forms found in the key with separators removed (all unambiguous as substrings).
_SECRET_SUBSTRINGS = (
    "password", "passwd", "passphrase", "secret", "apikey", "accesskey", "privatekey", "secretkey",
    "signingkey", "encryptionkey", "accesstoken", "refreshtoken", "authtoken", "apitoken", "idtoken",
    "bearertoken", "sessiontoken", "csrftoken", "xsrftoken", "creditcard", "cardnumber",
    "authorization", "authorisation", "cookie", "credential", "email", "phonenumber", "sessionid",
)  # fmt: skip
# Content words anywhere in the key.
_CONTENT_WORDS = frozenset(
    {"prompt", "prompts", "completion", "completions", "messages", "transcript", "transcripts",
     "conversation", "conversations"}
)  # fmt: skip
# Content words that count only as the key's last word.
_CONTENT_LAST_WORDS = frozenset(
    {"input", "inputs", "output", "outputs", "response", "responses", "text", "content", "contents",
     "body", "payload", "message", "query", "question", "answer", "reply", "history", "utterance"}
)  # fmt: skip
_NOT_CONTENT_FIRST_WORDS = frozenset({"error", "errors", "status", "exception", "warning", "failure"})
_MEASURE_LAST_WORDS = frozenset(
    {
        "tokens", "count", "counts", "total", "totals", "num", "ms", "us", "ns", "s", "sec", "secs",
        "second", "seconds", "minutes", "len", "length", "lengths", "chars", "characters", "bytes", "kb",
        "mb", "size", "sizes", "words", "lines", "pct", "percent", "ratio", "rate", "cost", "usd",
        "usdc", "used", "limit", "max", "min", "remaining", "latency", "duration", "attempts",
        "retries", "tries", "age", "ttl", "score",
    }
)  # fmt: skip
_MEASURE_FIRST_WORDS = frozenset({"num", "n", "count", "total", "max", "min"})
_LABEL_LAST_WORDS = frozenset(
    {
        "id", "ids", "uuid", "version", "name", "type", "kind", "format", "mode", "model", "hash",
        "status", "reason", "source", "lang", "language", "role", "at", "time", "ts", "date",
    }
)  # fmt: skip

# Key verdict bits.
_SECRET = 1
_CONTENT = 2
_MEASURE = 4
_LABEL = 8
_KEY_IS_SECRET = 16  # the key text itself looks like a secret/PII value
_MAX_LABEL_LEN = 256

_KEY_CACHE: dict[str, tuple[int, str]] = {}
_KEY_CACHE_MAX = 4096
_KEY_CACHE_LEN = 128


def _key_words(name: str) -> list[str]:
    rx = _rx()
    spaced = rx.camel2.sub(r"\1_\2", rx.camel1.sub(r"\1_\2", name))
    return rx.words.findall(spaced.lower())


def _classify_words(words: list[str]) -> int:
    if not words:
        return 0
    verdict = 0
    squashed = "".join(words)
    if (
        any(w in _SECRET_WORDS for w in words)
        or any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))
        or any(s in squashed for s in _SECRET_SUBSTRINGS)
    ):
        verdict |= _SECRET
    elif any(w in _CONTENT_WORDS for w in words) or (
        words[-1] in _CONTENT_LAST_WORDS and words[0] not in _NOT_CONTENT_FIRST_WORDS
    ):
        verdict |= _CONTENT
    if verdict:
        if words[-1] in _MEASURE_LAST_WORDS or (len(words) > 1 and words[0] in _MEASURE_FIRST_WORDS):
            verdict |= _MEASURE
        if words[-1] in _LABEL_LAST_WORDS:
            verdict |= _LABEL
    return verdict


def _key_segment(key: str, secret_looking: bool) -> str:
    """How `key` appears in a path: ``.name`` or ``["odd key"]``; secret-looking keys are masked."""
    if secret_looking:
        key = scrub_text(key)
        if len(key) > 40 or REDACTED in key:
            key = REDACTED
    if len(key) > 64:
        key = key[:40] + "…"
    if _rx().plain_key.fullmatch(key):
        return "." + key
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def _key_info(name: str) -> tuple[int, str]:
    """(verdict bits, path segment) for a key name; cached unless the name looks secret."""
    cached = _KEY_CACHE.get(name)
    if cached is not None:
        return cached
    verdict = _classify_words(_key_words(name))
    if looks_sensitive(name):
        return verdict | _KEY_IS_SECRET, _key_segment(name, True)  # never cache secret-looking text
    info = (verdict, _key_segment(name, False))
    if len(name) <= _KEY_CACHE_LEN:
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[name] = info
    return info


def is_sensitive_key(name: str) -> bool:
    """True if a string value under key `name` is redacted because of the key name alone.

    See the module docstring for the rule: ``prompt``, ``api_token``,
    ``Authorization``, ``x-api-key``, ``user.email``, ``env`` are sensitive;
    ``prompt_tokens``, ``token_count``, ``input_tokens``, ``prompt_id``,
    ``content_type`` are not.  A key whose text itself looks like a secret
    (``sk_live_…``) is sensitive too.
    """
    verdict = _key_info(name)[0]
    if verdict & _KEY_IS_SECRET:
        return True
    if verdict & _SECRET:
        return not verdict & _MEASURE
    if verdict & _CONTENT:
        return not verdict & (_MEASURE | _LABEL)
    return False


# --------------------------------------------------------------------------- sanitizer

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _is_numeric(value: Any, depth: int = 0) -> bool:
    """A number, null, a numeric string ("850ms", "1,024"), or a list/object of only those."""
    t = type(value)
    if t is int or t is float or t is bool or value is None:
        return True
    if isinstance(value, str):
        return len(value) <= 64 and _rx().numeric.fullmatch(value) is not None
    if isinstance(value, (list, tuple, Mapping)):
        if depth >= 8 or len(value) > 1024:  # cycles, deep or huge: not numeric here; the walk rejects it
            return False
        items = value.values() if isinstance(value, Mapping) else value
        return all(_is_numeric(v, depth + 1) for v in items)
    return isinstance(value, (int, float))


def _redact_by_key(verdict: int, value: Any) -> bool:
    """Whether the key rule (module docstring) redacts `value` under a key with this verdict."""
    if not verdict or value is None or type(value) is bool:
        return False
    if verdict & _SECRET:
        return not (verdict & _MEASURE and _is_numeric(value))
    # A content key: numbers cannot be raw text; short labels (prompt_id, prompt_version) are fine.
    if verdict & _LABEL and isinstance(value, str) and len(value) <= _MAX_LABEL_LEN:
        return False
    return not _is_numeric(value)


def _str_bound(s: str) -> int:
    """An upper bound of len(json.dumps(s, ensure_ascii=False).encode())."""
    if s.isascii() and s.isprintable():
        return 2 * len(s) + 2
    return 6 * len(s) + 2


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(type(obj).__name__)  # pragma: no cover - the walk rejects these first


class _Walker:
    __slots__ = ("bound", "floor", "keys", "kinds", "limits", "paths")

    def __init__(self, limits: RedactionLimits) -> None:
        self.limits = limits
        self.keys = 0
        self.bound = 0  # an upper bound of the serialized size
        self.floor = 0  # a lower bound of the serialized size: reject huge input early
        self.paths: list[str] = []
        self.kinds: list[str] = []

    def hit(self, path: str, kind: str) -> None:
        self.paths.append(path)
        self.kinds.append(kind)

    def string(self, s: str, path: str) -> None:
        if len(s) > self.limits.max_string_length:
            raise MetadataRejected(
                "string_too_long",
                [path],
                detail=f"is a {len(s)}-character string, over the {self.limits.max_string_length} limit",
            )
        self.bound += _str_bound(s)
        self.floor += len(s)

    def walk(self, value: Any, path: str, depth: int, scan: bool) -> Any:
        """Validate `value`; if `scan`, return its sanitized copy (else None)."""
        t = type(value)
        if t is str:
            self.string(value, path)
            if scan and len(value) >= _MIN_SENSITIVE_LEN:
                kind = looks_sensitive(value)
                if kind is not None:
                    self.hit(path, kind)
                    return REDACTED
            return value
        if value is None or t is bool:
            self.bound += 5
            return value
        if t is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise MetadataRejected("not_json", [path], detail="is an integer outside 64 bits; send it as a string")
            self.bound += 20
            if scan and value >= 10**12 and _is_card_digits(str(value)):
                self.hit(path, "card_number")
                return REDACTED
            return value
        if t is float:
            if not math.isfinite(value):
                raise MetadataRejected(
                    "not_json",
                    [path],
                    detail="is NaN or Infinity, which JSON cannot carry; send a finite number or null",
                )
            self.bound += 25
            return value
        if t is dict or isinstance(value, Mapping):
            return self.mapping(value, path, depth + 1, scan)
        if t is list or isinstance(value, (list, tuple)):
            return self.sequence(value, path, depth + 1, scan)
        # Subclasses of JSON scalars (str/int enums ...) become the plain type.
        if isinstance(value, str):
            return self.walk(str.__str__(value), path, depth, scan)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.walk(int(value), path, depth, scan)
        if isinstance(value, float):
            return self.walk(float(value), path, depth, scan)
        raise MetadataRejected(
            "not_json",
            [path],
            detail=f"is a {type(value).__name__}, which is not JSON; "
            "use strings, numbers, booleans, null, lists or objects",
        )

    def enter(self, path: str, depth: int, size: int) -> None:
        if depth > self.limits.max_depth:
            raise MetadataRejected("too_deep", [path], detail=str(self.limits.max_depth))
        self.bound += 2 + size
        self.floor += 1 + 2 * size  # brackets, separators and at least one byte per item
        if self.floor > self.limits.max_bytes:
            raise MetadataRejected(
                "too_large", [path], detail=f"more than {self.limits.max_bytes} bytes of JSON (the limit)"
            )

    def mapping(self, value: Mapping[Any, Any], path: str, depth: int, scan: bool) -> dict[str, Any] | None:
        self.enter(path, depth, len(value))
        self.keys += len(value)
        if self.keys > self.limits.max_keys:
            raise MetadataRejected("too_many_keys", [path], detail=str(self.limits.max_keys))
        out: dict[str, Any] | None = {} if scan else None
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise MetadataRejected(
                        "not_json",
                        [path],
                        detail=f"has a key of type {type(key).__name__}; object keys must be strings",
                    )
                key = str.__str__(key)
            if len(key) > self.limits.max_string_length:
                self.string(key, path + _key_segment(key, True))
            verdict, segment = _key_info(key)
            child = path + segment
            self.bound += _str_bound(key)
            self.bound += 1
            if out is None:
                self.walk(item, child, depth, False)
            elif verdict & _KEY_IS_SECRET:
                self.walk(item, child, depth, False)
                self.hit(child, "key_name")
                out[REDACTED] = REDACTED
            elif verdict and _redact_by_key(verdict, item):
                self.walk(item, child, depth, False)
                self.hit(child, "key_name")
                out[key] = REDACTED
            else:
                out[key] = self.walk(item, child, depth, True)
        return out

    def sequence(self, value: list[Any] | tuple[Any, ...], path: str, depth: int, scan: bool) -> list[Any] | None:
        self.enter(path, depth, len(value))
        if not scan:
            for i, item in enumerate(value):
                self.walk(item, f"{path}[{i}]", depth, False)
            return None
        return [self.walk(item, f"{path}[{i}]", depth, True) for i, item in enumerate(value)]


def sanitize_metadata(
    value: Mapping[str, Any] | None,
    *,
    path: str = "metadata",
    policy: MetadataPolicy = MetadataPolicy.REDACT,
    limits: RedactionLimits = RedactionLimits(),  # frozen, so sharing the default is safe
) -> Sanitized:
    """Check one metadata object and return a cleaned copy.

    `path` names the object in paths and messages (e.g. ``"events[2].metadata"``).
    Raises `MetadataRejected` for limit and non-JSON violations under every
    policy, and for sensitive fields under ``STRICT``.  The input is never
    mutated.
    """
    if value is None:
        return Sanitized(None, ())
    if not isinstance(value, Mapping):
        raise MetadataRejected(
            "not_json",
            [path],
            detail=f"is a {type(value).__name__}; metadata must be an object (a dict) or null",
        )
    walker = _Walker(limits)
    out = walker.mapping(value, path, 1, True)
    assert out is not None
    if walker.bound > limits.max_bytes:
        size = len(
            json.dumps(
                value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
            ).encode()
        )
        if size > limits.max_bytes:
            raise MetadataRejected(
                "too_large", [path], detail=f"{size} bytes of JSON, over the {limits.max_bytes} byte limit"
            )
    if walker.paths and policy == MetadataPolicy.STRICT:
        raise MetadataRejected("sensitive", walker.paths, kinds=walker.kinds)
    return Sanitized(out, tuple(walker.paths))
