"""Keep PII, secrets and raw content out of the metadata sent to Drip (`sanitize_metadata`).

Metadata must carry *operational context only* (model, tool, status, latency,
token counts, ...). Two policies: ``REDACT`` (default) replaces an offending
value with ``"[REDACTED]"`` and lists its path; ``STRICT`` rejects the call.
Size, depth, key-count and string-length limits and non-JSON values reject
under both policies. The full rules, with examples, are in ``docs/redaction.md``.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drip_mcp.redaction.detectors import _MIN_SENSITIVE_LEN, REDACTED, _is_card_digits, _rx, looks_sensitive
from drip_mcp.redaction.key_names import (
    _KEY_IS_SECRET,
    _LABEL,
    _MAX_LABEL_LEN,
    _MEASURE,
    _SECRET,
    _key_info,
    _key_segment,
)

__all__ = ["MetadataPolicy", "MetadataRejected", "RedactionLimits", "Sanitized", "sanitize_metadata"]


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
