"""Configuration: environment → `Settings` → client → server, one way.

Every value is resolved in this order, first match wins:

1. an explicit argument (a command-line flag, or a keyword to `Settings.load`);
2. the environment variable named beside the field below;
3. the default constant in this module.

The base URL is special only in having two environment names: ``DRIP_API_URL``
beats ``DRIP_BASE_URL`` (as in Drip's Python SDK), and ``/v1`` is appended when
missing.

| field            | flag                 | environment              | default                       |
|------------------|----------------------|--------------------------|-------------------------------|
| api_key          | (env only)           | DRIP_API_KEY             | none; sandbox: a pk_test_ key |
| base_url         | --base-url           | DRIP_API_URL, DRIP_BASE_URL | https://api.drippay.dev/v1 |
| timeout          | --timeout            | DRIP_TIMEOUT             | 30 s                          |
| max_retries      | --max-retries        | DRIP_MAX_RETRIES         | 3                             |
| toolsets         | --toolsets           | DRIP_TOOLSETS            | all                           |
| tools            | --tools              | DRIP_TOOLS               | all                           |
| exclude_tools    | --exclude-tools      | DRIP_EXCLUDE_TOOLS       | none                          |
| read_only        | --read-only          | DRIP_READ_ONLY           | false                         |
| metadata_policy  | --metadata-policy    | DRIP_METADATA_POLICY     | redact                        |
| sandbox_db       | --sandbox-db         | DRIP_SANDBOX_DB          | <state dir>/sandbox.db        |
| outbox           | --outbox             | DRIP_MCP_OUTBOX          | <state dir>/outbox.db         |
| max_charge_usdc  | --max-charge-usdc    | DRIP_MAX_CHARGE_USDC     | no cap                        |
| session_budget_usdc | --session-budget-usdc | DRIP_SESSION_BUDGET_USDC | no cap                    |
| max_quantity     | --max-quantity       | DRIP_MAX_QUANTITY        | no cap                        |
| confirm_charges  | --confirm-charges    | DRIP_CONFIRM_CHARGES     | false                         |

The API key is deliberately not a flag: command lines are visible to every
user of the machine (``ps``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from drip_mcp.errors import ConfigurationError
from drip_mcp.keys import KEY_FORMAT_HINT, ApiKey
from drip_mcp.paths import state_dir
from drip_mcp.retrying import DEFAULT_MAX_RETRIES

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "SANDBOX_PUBLIC_KEY",
    "TOOLSETS",
    "Settings",
    "normalize_base_url",
]

DEFAULT_BASE_URL = "https://api.drippay.dev/v1"
DEFAULT_TIMEOUT = 30.0
# The key the embedded sandbox uses when none is configured: public, least privilege.
SANDBOX_PUBLIC_KEY = "pk_test_sandbox_local"
TOOLSETS = ("usage", "runs", "billing", "customers", "webhooks", "status")
METADATA_POLICIES = ("redact", "strict")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes and make sure the URL ends in ``/v1``."""
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigurationError(f"Drip API URL must start with http:// or https:// (got {cleaned!r})")
    return cleaned if cleaned.endswith("/v1") else f"{cleaned}/v1"


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false (got {raw!r})")


def _parse_list(raw: str | Sequence[str]) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _parse_number(name: str, raw: str | float, *, minimum: float, integer: bool = False) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number (got {raw!r})") from None
    if not value >= minimum or value == float("inf") or (integer and not value.is_integer()):
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"{name} must be {kind} >= {minimum:g} (got {raw!r})")
    return value


def _parse_amount(name: str, explicit: str | Decimal | None, raw: str | None) -> Decimal | None:
    value = explicit if explicit is not None else raw
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"{name} must be a decimal number (got {value!r})") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{name} must be a finite number >= 0 (got {value!r})")
    return amount


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. ``repr()`` shows the key masked."""

    api_key: ApiKey | None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    sandbox: bool = False
    sandbox_db: Path | None = None
    toolsets: tuple[str, ...] = TOOLSETS
    tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()
    read_only: bool = False
    metadata_policy: str = "redact"
    outbox: Path | None = None
    max_charge_usdc: Decimal | None = None
    session_budget_usdc: Decimal | None = None
    max_quantity: Decimal | None = None
    confirm_charges: bool = False

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        sandbox: bool = False,
        require_key: bool = True,
        sandbox_db: str | Path | None = None,
        toolsets: str | Sequence[str] | None = None,
        tools: str | Sequence[str] | None = None,
        exclude_tools: str | Sequence[str] | None = None,
        read_only: bool | None = None,
        metadata_policy: str | None = None,
        outbox: str | Path | None = None,
        max_charge_usdc: str | Decimal | None = None,
        session_budget_usdc: str | Decimal | None = None,
        max_quantity: str | Decimal | None = None,
        confirm_charges: bool | None = None,
    ) -> Settings:
        """Resolve settings: explicit arguments, then `environ` (default ``os.environ``), then defaults.

        Raises `ConfigurationError` with a one-line message on anything malformed. With
        ``require_key=False`` (hosted mode, where every HTTP client brings its own key) a missing
        key leaves `api_key` as None.
        """
        env = os.environ if environ is None else environ

        raw_key = api_key if api_key is not None else env.get("DRIP_API_KEY", "")
        key: ApiKey | None = None
        if raw_key.strip():
            key = ApiKey(raw_key)
        elif sandbox:
            key = ApiKey(SANDBOX_PUBLIC_KEY)
        elif require_key:
            raise ConfigurationError(
                f"DRIP_API_KEY is not set: {KEY_FORMAT_HINT} (or run with --sandbox to try drip-mcp offline)"
            )
        if sandbox and key is not None and key.is_live:
            raise ConfigurationError("the sandbox takes test keys only (pk_test_... or sk_test_...)")

        url = base_url or env.get("DRIP_API_URL") or env.get("DRIP_BASE_URL") or DEFAULT_BASE_URL
        resolved_timeout = _parse_number(
            "timeout",
            timeout if timeout is not None else env.get("DRIP_TIMEOUT", DEFAULT_TIMEOUT),
            minimum=0.1,
        )
        resolved_retries = _parse_number(
            "max retries",
            max_retries if max_retries is not None else env.get("DRIP_MAX_RETRIES", DEFAULT_MAX_RETRIES),
            minimum=0,
            integer=True,
        )

        chosen_toolsets = _parse_list(toolsets if toolsets is not None else env.get("DRIP_TOOLSETS", ""))
        unknown = sorted(set(chosen_toolsets) - set(TOOLSETS))
        if unknown:
            raise ConfigurationError(f"unknown toolset(s) {', '.join(unknown)}; choose from {', '.join(TOOLSETS)}")

        policy = (metadata_policy or env.get("DRIP_METADATA_POLICY") or "redact").strip().lower()
        if policy not in METADATA_POLICIES:
            raise ConfigurationError(f"metadata policy must be 'redact' or 'strict' (got {policy!r})")

        db = sandbox_db if sandbox_db is not None else env.get("DRIP_SANDBOX_DB")
        outbox_path = outbox if outbox is not None else env.get("DRIP_MCP_OUTBOX")
        return cls(
            api_key=key,
            base_url=normalize_base_url(url),
            timeout=resolved_timeout,
            max_retries=int(resolved_retries),
            sandbox=sandbox,
            sandbox_db=Path(db).expanduser() if db else (state_dir(env) / "sandbox.db" if sandbox else None),
            toolsets=chosen_toolsets or TOOLSETS,
            tools=_parse_list(tools if tools is not None else env.get("DRIP_TOOLS", "")),
            exclude_tools=_parse_list(
                exclude_tools if exclude_tools is not None else env.get("DRIP_EXCLUDE_TOOLS", "")
            ),
            read_only=read_only
            if read_only is not None
            else _parse_bool("DRIP_READ_ONLY", env.get("DRIP_READ_ONLY", "")),
            metadata_policy=policy,
            outbox=Path(outbox_path).expanduser() if outbox_path else state_dir(env) / "outbox.db",
            max_charge_usdc=_parse_amount("max charge", max_charge_usdc, env.get("DRIP_MAX_CHARGE_USDC")),
            session_budget_usdc=_parse_amount(
                "session budget", session_budget_usdc, env.get("DRIP_SESSION_BUDGET_USDC")
            ),
            max_quantity=_parse_amount("max quantity", max_quantity, env.get("DRIP_MAX_QUANTITY")),
            confirm_charges=confirm_charges
            if confirm_charges is not None
            else _parse_bool("DRIP_CONFIRM_CHARGES", env.get("DRIP_CONFIRM_CHARGES", "")),
        )
