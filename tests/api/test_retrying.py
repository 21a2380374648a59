"""`drip_mcp.api.retrying`: what is retried and how long to wait."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from drip_mcp.api import retrying
from drip_mcp.api.retrying import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
    set_testing,
    sleeping_enabled,
)

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def fixed_now() -> float:
    return NOW


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 400, 401, 402, 403, 404, 409, 422, 501, 505])
def test_other_statuses_are_not_retryable(status: int) -> None:
    assert not is_retryable_status(status)


def test_retryable_set_is_exactly_429_and_transient_5xx() -> None:
    assert frozenset({429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


# --- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0", 0.0), (" 2.5 ", 2.5), ("120", 120.0)])
def test_retry_after_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header, now=fixed_now) == expected


def test_retry_after_http_date_uses_now() -> None:
    header = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(header, now=fixed_now) == pytest.approx(30.0)


def test_retry_after_http_date_literal() -> None:
    # 2023-11-14T22:13:20Z is NOW; 45 s later:
    assert parse_retry_after("Tue, 14 Nov 2023 22:14:05 GMT", now=fixed_now) == pytest.approx(45.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    header = email.utils.formatdate(NOW - 100, usegmt=True)
    assert parse_retry_after(header, now=fixed_now) == 0.0


@pytest.mark.parametrize("header", ["soon", "-5", "nan", "inf", "1e999", "Tue, 99 Foo 2023", ""])
def test_retry_after_garbage_or_negative_is_ignored(header: str) -> None:
    assert parse_retry_after(header, now=fixed_now) is None


@pytest.mark.parametrize("header", [None, "garbage", "-1"])
def test_body_retry_after_used_when_header_absent_or_unusable(header: str | None) -> None:
    assert parse_retry_after(header, {"retryAfter": 4}, now=fixed_now) == 4.0
    assert parse_retry_after(header, {"retry_after": 1.5}, now=fixed_now) == 1.5


def test_header_beats_body() -> None:
    assert parse_retry_after("2", {"retryAfter": 9}, now=fixed_now) == 2.0


@pytest.mark.parametrize(
    "body",
    [
        {"retryAfter": -3},
        {"retryAfter": "5"},
        {"retryAfter": True},
        {"retryAfter": float("nan")},
        {"retryAfter": float("inf")},
        {"retryAfter": None},
        {},
        ["retryAfter", 5],
        "retryAfter: 5",
        None,
    ],
)
def test_unusable_body_retry_after_is_ignored(body: Any) -> None:
    assert parse_retry_after(None, body, now=fixed_now) is None


# --- backoff ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4])
def test_backoff_equal_jitter_bounds(attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=8.0)
    ceiling = 0.25 * 2**attempt

    assert backoff_delay(policy, attempt, rand=lambda: 0.0) == pytest.approx(ceiling / 2)
    assert backoff_delay(policy, attempt, rand=lambda: 1.0) == pytest.approx(ceiling)
    assert ceiling / 2 <= backoff_delay(policy, attempt, rand=lambda: 0.5) <= ceiling


def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)

    assert backoff_delay(policy, 10, rand=lambda: 1.0) == pytest.approx(5.0)
    assert backoff_delay(policy, 10, rand=lambda: 0.0) == pytest.approx(2.5)
    assert backoff_delay(policy, 60, rand=lambda: 1.0) == pytest.approx(5.0)


def test_backoff_uses_default_random_within_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for _ in range(50):
        assert 2.0 <= backoff_delay(policy, 2) <= 4.0


def test_retry_after_overrides_backoff() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=8.0, max_retry_after=60.0)
    assert backoff_delay(policy, 0, 12.0, rand=lambda: 1.0) == 12.0
    assert backoff_delay(policy, 3, 0.0, rand=lambda: 1.0) == 0.0


def test_retry_after_is_capped_at_max_retry_after() -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    assert backoff_delay(policy, 0, 3600.0) == 60.0
    assert backoff_delay(RetryPolicy(max_retry_after=5.0), 0, 7.0) == 5.0


def test_set_testing_toggles_sleeping() -> None:
    before = sleeping_enabled()
    try:
        set_testing(True)
        assert not sleeping_enabled()
        set_testing(False)
        assert sleeping_enabled()
    finally:
        set_testing(not before)
    assert retrying.sleeping_enabled() is before
