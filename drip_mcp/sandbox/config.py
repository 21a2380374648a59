"""Configuration of the sandbox and of its fault injection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

__all__ = ["FaultConfig", "SandboxConfig"]

_FAULT_ENV = (
    "DRIP_SANDBOX_FAULT_RATE",
    "DRIP_SANDBOX_DROP_RATE",
    "DRIP_SANDBOX_LATENCY_MS",
    "DRIP_SANDBOX_RETRY_AFTER_S",
    "DRIP_SANDBOX_FAULT_SEED",
)


def _rate(name: str, raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {raw!r}")
    return value


def _latency_ms(raw: str) -> tuple[float, float]:
    low, sep, high = raw.partition("-")
    low_ms = float(low)
    high_ms = float(high) if sep else low_ms
    if low_ms < 0 or high_ms < low_ms:
        raise ValueError(f"DRIP_SANDBOX_LATENCY_MS must look like '0-20', got {raw!r}")
    return low_ms / 1000, high_ms / 1000


@dataclass(frozen=True)
class FaultConfig:
    """Which faults the sandbox injects into ``/v1/`` requests (all off by default).

    A matching request first waits a random latency from `latency_s`; then, with
    probability `drop_rate`, its connection is dropped (after the request took
    effect when `drop_after_processing`, else before); otherwise, with
    probability `failure_rate`, it gets one of `statuses` instead of being
    handled. 429 answers carry ``Retry-After: retry_after_s`` and body
    ``retryAfter``.
    """

    failure_rate: float = 0.0
    route_prefix: str = "/v1/"
    statuses: tuple[int, ...] = (500, 502, 503, 429)
    retry_after_s: float = 0.05
    drop_rate: float = 0.0
    drop_after_processing: bool = True
    latency_s: tuple[float, float] = (0.0, 0.0)
    seed: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FaultConfig | None:
        """Read the ``DRIP_SANDBOX_*`` fault variables; None when none is set.

        ``DRIP_SANDBOX_FAULT_RATE`` and ``DRIP_SANDBOX_DROP_RATE`` are fractions
        (0..1), ``DRIP_SANDBOX_LATENCY_MS`` is ``"low-high"`` or one number,
        ``DRIP_SANDBOX_RETRY_AFTER_S`` seconds, ``DRIP_SANDBOX_FAULT_SEED`` an
        integer. Malformed values raise `ValueError`.
        """
        if not any(environ.get(name) for name in _FAULT_ENV):
            return None
        defaults = cls()
        fault_rate = environ.get("DRIP_SANDBOX_FAULT_RATE")
        drop_rate = environ.get("DRIP_SANDBOX_DROP_RATE")
        latency = environ.get("DRIP_SANDBOX_LATENCY_MS")
        retry_after = environ.get("DRIP_SANDBOX_RETRY_AFTER_S")
        seed = environ.get("DRIP_SANDBOX_FAULT_SEED")
        return cls(
            failure_rate=_rate("DRIP_SANDBOX_FAULT_RATE", fault_rate) if fault_rate else 0.0,
            drop_rate=_rate("DRIP_SANDBOX_DROP_RATE", drop_rate) if drop_rate else 0.0,
            latency_s=_latency_ms(latency) if latency else defaults.latency_s,
            retry_after_s=float(retry_after) if retry_after else defaults.retry_after_s,
            seed=int(seed) if seed else None,
        )


@dataclass(frozen=True)
class SandboxConfig:
    """How a `Sandbox` is set up.

    `webhook_retry_delays_s` are the waits between delivery attempts, so a
    delivery is tried ``len(webhook_retry_delays_s) + 1`` times before it is
    marked FAILED.

    `webhook_allowed_hosts` widens where webhooks may point: by default only
    loopback hosts (``localhost``, 127.0.0.0/8, ``::1``) are accepted, so a
    sandbox never posts events to the internet. Each entry is a host name
    (``hooks.example.com``), a suffix pattern (``*.example.com``), or ``*`` for
    any host. Non-loopback URLs must still be ``https://``.
    """

    db_path: str | Path = ":memory:"
    starting_balance_usdc: Decimal = Decimal("100.000000")
    faults: FaultConfig | None = None
    public_base_url: str | None = None
    webhook_retry_delays_s: tuple[float, ...] = (0.05, 0.25, 1.0)
    webhook_allowed_hosts: tuple[str, ...] = ()
