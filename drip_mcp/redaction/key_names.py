"""The key-name rule: is a metadata key a secret/PII name, a raw-content name, a measure or a label?

`is_sensitive_key` answers the name-only question. The classification bits
(`_SECRET`, `_CONTENT`, `_MEASURE`, `_LABEL`, `_KEY_IS_SECRET`) are read by the
metadata walk. The full policy is in ``docs/redaction.md``.
"""

from __future__ import annotations

import itertools
import json

from drip_mcp.redaction.detectors import REDACTED, _rx, looks_sensitive, scrub_text

__all__ = ["is_sensitive_key"]

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
