"""The value rule: does a string look like a secret or PII? (`looks_sensitive`, `scrub_text`).

Drip/Stripe keys, ``whsec_`` secrets, bearer/basic credentials, JWTs, cloud and
vendor API keys, PEM private keys, credentials in URLs, password assignments,
emails, card numbers (brand + length + Luhn), phone numbers, SSNs and IBANs.
Patterns are compiled lazily and only run on strings with their trigger
features. The full policy is in ``docs/redaction.md``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from typing import NamedTuple

from drip_mcp.masking import mask_key

__all__ = ["REDACTED", "looks_sensitive", "scrub_text"]

REDACTED = "[REDACTED]"

# --------------------------------------------------------------------------- patterns

# Kinds shown as `drip_mcp.masking.mask_key` does ("sk_test_…9f3a") in scrub_text; everything else is [REDACTED].
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
        return mask_key(text)
    if f"v{i}" not in m.re.groupindex:
        return REDACTED
    secret = m.group(f"v{i}")
    # Keep the friendlier mask when the secret is itself a Drip key ("Bearer sk_test_…9f3a").
    masked = mask_key(secret) if _rx().kinds[_DRIP_KEY].fullmatch(secret) else REDACTED
    start = m.start()
    return text[: m.start(f"v{i}") - start] + masked + text[m.end(f"v{i}") - start :]


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
