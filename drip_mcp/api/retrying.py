"""The retry rule, as small pure functions.

What is retried: HTTP 429, 500, 502, 503 and 504, connection errors and
timeouts. Nothing else: a 4xx other than 429 means the request itself is wrong
and will be wrong again.

How long to wait before retry ``n`` (0-based): the server's ``Retry-After``
when it gave one (header in seconds or as an HTTP-date, else a body
``retryAfter``), capped at `RetryPolicy.max_retry_after`; otherwise
exponential backoff ``base * 2**n`` capped at `RetryPolicy.max_delay`, with
"equal jitter" (half fixed, half random) so that a fleet of agents does not
retry in lockstep.

One deadline per call: a logical call (every attempt and every wait) never
runs past its budget, `RetryPolicy.deadline` seconds, by default
``settings.call_deadline(timeout, max_retries)`` = timeout × (max_retries + 1)
(`drip_mcp.settings.DEFAULT_CALL_DEADLINE`, 120 s with the defaults). The
client measures what is left (`remaining`) and asks `next_delay`, which ends the
call at once (returns None) when the retries are used up, when the server's
``Retry-After`` is not shorter than what is left (the error then carries
``retry_after`` so the caller knows when to come back), or when a backoff wait
would use up the rest of the budget. An attempt in flight is cut off at the
deadline too.

Tests switch real sleeping off with `set_testing(True)`; the computed delays
are unchanged, so they can still be asserted.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drip_mcp.settings import DEFAULT_MAX_RETRIES

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "backoff_delay",
    "is_retryable_status",
    "next_delay",
    "parse_retry_after",
    "set_testing",
    "sleeping_enabled",
]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

_testing = False


def set_testing(on: bool) -> None:
    """Turn real sleeping between retries off (tests) or back on."""
    global _testing
    _testing = on


def sleeping_enabled() -> bool:
    return not _testing


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait. Times in seconds.

    ``deadline``: the budget of one logical call; None lets the client derive it from its
    timeout (`drip_mcp.settings.call_deadline`).
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    deadline: float | None = None


def is_retryable_status(status: int) -> bool:
    """True for 429 and the transient 5xx statuses."""
    return status in RETRYABLE_STATUSES


def parse_retry_after(header: str | None, body: Any = None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP-date) or a body ``retryAfter``."""
    if header:
        value = header.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - now())
        else:
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    if isinstance(body, Mapping):
        raw = body.get("retryAfter", body.get("retry_after"))
        if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0:
            return float(raw)
    return None


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    ceiling = min(policy.max_delay, policy.base_delay * 2.0**attempt)
    return ceiling / 2 + rand() * ceiling / 2


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    remaining: float,
    *,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry `attempt` (0-based), or None when the call must end now.

    `remaining` is what is left of the call's deadline. None when the retries are used up,
    when `retry_after` is not shorter than `remaining`, or when the wait would use up `remaining`.
    """
    if attempt >= policy.max_retries:
        return None
    if retry_after is not None and retry_after >= remaining:
        return None
    delay = backoff_delay(policy, attempt, retry_after, rand=rand)
    return delay if delay < remaining else None
