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
| call_deadline    | (derived)            | (derived)                | timeout × (max_retries + 1)   |
| surface          | --surface            | DRIP_SURFACE             | core                          |
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
| state_dir        | (env only)           | DRIP_MCP_STATE_DIR, XDG_STATE_HOME | ~/.local/state/drip-mcp |
| state_url        | --state-url          | DRIP_MCP_STATE_URL       | none: SQLite <state dir>/state.db |
| state_key        | (env only)           | DRIP_MCP_STATE_KEY       | none: tenant keys not stored  |
| max_sessions_per_tenant | --max-sessions-per-tenant | DRIP_MCP_MAX_SESSIONS_PER_TENANT | 100 |
| sandbox_faults   | (env only)           | DRIP_SANDBOX_{FAULT_RATE,DROP_RATE,LATENCY_MS,RETRY_AFTER_S,FAULT_SEED} |
| sandbox_webhook_hosts | (env; sandbox: --allow-webhook-host) | DRIP_SANDBOX_WEBHOOK_HOSTS | loopback only |

HTTP-only values are resolved the same way by `drip_mcp.http.options.HttpOptions.from_args`:
``--auth-token`` (``DRIP_MCP_AUTH_TOKEN``) and OAuth resource-server mode (`OAuthEnvironment`):
``--oauth-issuer`` (``DRIP_MCP_OAUTH_ISSUER``), ``--oauth-audience`` (``DRIP_MCP_OAUTH_AUDIENCE``) and
``--oauth-jwks-url`` (``DRIP_MCP_OAUTH_JWKS_URL``; default: the issuer's discovery document).

The API key is deliberately not a flag: command lines are visible to every
user of the machine (``ps``). Nor does a live key travel in clear text: a live
key with a plain ``http://`` base URL that is not loopback is a configuration
error, and a test key there gets one warning line on stderr
(`check_key_transport`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from drip_mcp.errors import ConfigurationError
from drip_mcp.hosts import is_loopback
from drip_mcp.keys import KEY_FORMAT_HINT, ApiKey

__all__ = [
    "AUTH_TOKEN_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CALL_DEADLINE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_SESSIONS_PER_TENANT",
    "DEFAULT_TIMEOUT",
    "LOG_LEVEL_ENV",
    "OAUTH_AUDIENCE_ENV",
    "OAUTH_ISSUER_ENV",
    "OAUTH_JWKS_URL_ENV",
    "SANDBOX_PUBLIC_KEY",
    "STATE_KEY_ENV",
    "STATE_URL_ENV",
    "SURFACES",
    "TOOLSETS",
    "WORKER_CONFIG_ENV",
    "OAuthEnvironment",
    "Settings",
    "WorkerEnvironment",
    "auth_token_from_env",
    "call_deadline",
    "check_key_transport",
    "normalize_base_url",
    "resolve_state_dir",
]

DEFAULT_BASE_URL = "https://api.drippay.dev/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3


def call_deadline(timeout: float, max_retries: int) -> float:
    """Seconds one logical Drip call may take, all attempts and waits: ``timeout × (max_retries + 1)``."""
    return timeout * (max_retries + 1)


DEFAULT_CALL_DEADLINE = call_deadline(DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)  # 120 s
APP_DIR_NAME = "drip-mcp"
# HTTP: the shared bearer token, and what `drip-mcp --workers N` passes to its worker processes.
AUTH_TOKEN_ENV = "DRIP_MCP_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token
WORKER_CONFIG_ENV = "DRIP_MCP_HTTP_CONFIG"
LOG_LEVEL_ENV = "DRIP_MCP_LOG_LEVEL"
# HTTP: OAuth 2.1 resource-server mode (`drip_mcp.http.oauth`); public values, so workers get them in the config JSON.
OAUTH_ISSUER_ENV = "DRIP_MCP_OAUTH_ISSUER"
OAUTH_AUDIENCE_ENV = "DRIP_MCP_OAUTH_AUDIENCE"
OAUTH_JWKS_URL_ENV = "DRIP_MCP_OAUTH_JWKS_URL"
# Fault injection for the sandbox (tests and demos): passed through to `drip_mcp.sandbox.FaultConfig`.
SANDBOX_FAULT_ENV = (
    "DRIP_SANDBOX_FAULT_RATE",
    "DRIP_SANDBOX_DROP_RATE",
    "DRIP_SANDBOX_LATENCY_MS",
    "DRIP_SANDBOX_RETRY_AFTER_S",
    "DRIP_SANDBOX_FAULT_SEED",
)
# The key the embedded sandbox uses when none is configured: public, least privilege.
SANDBOX_PUBLIC_KEY = "pk_test_sandbox_local"
# The shared state store (PostgreSQL) and the operator key that seals tenant keys at rest.
STATE_URL_ENV = "DRIP_MCP_STATE_URL"
STATE_KEY_ENV = "DRIP_MCP_STATE_KEY"
DEFAULT_MAX_SESSIONS_PER_TENANT = 100
TOOLSETS = (
    "usage",
    "runs",
    "billing",
    "customers",
    "entitlements",
    "subscriptions",
    "events",
    "contracts",
    "webhooks",
    "admin",
    "status",
)
SURFACES = ("core", "full")
METADATA_POLICIES = ("redact", "strict")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes and make sure the URL ends in ``/v1``."""
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigurationError(f"Drip API URL must start with http:// or https:// (got {cleaned!r})")
    return cleaned if cleaned.endswith("/v1") else f"{cleaned}/v1"


def check_key_transport(key: ApiKey, base_url: str) -> str | None:
    """Refuse a live key over plain HTTP to a non-loopback host; return a warning for a test key there.

    Raises `ConfigurationError` for the live key; returns None when the URL is ``https`` or loopback.
    """
    scheme, _, rest = base_url.partition("://")
    host = rest.split("/", 1)[0].rpartition("@")[2]
    host = host.partition("]")[0] + "]" if host.startswith("[") else host.rpartition(":")[0] or host
    if scheme.lower() != "http" or is_loopback(host):
        return None
    if key.is_live:
        raise ConfigurationError(
            f"refusing to send a live key in clear text to {base_url}: use an https:// Drip API URL"
        )
    return f"drip-mcp: warning: the test key goes in clear text to {base_url}; use https:// outside loopback"


def resolve_state_dir(environ: Mapping[str, str]) -> Path:
    """Where drip-mcp keeps local state (not created here; see `drip_mcp.paths.ensure_private_dir`).

    ``DRIP_MCP_STATE_DIR``, else ``$XDG_STATE_HOME/drip-mcp``, else ``~/.local/state/drip-mcp``.
    """
    if explicit := environ.get("DRIP_MCP_STATE_DIR"):
        return Path(explicit).expanduser()
    if xdg := environ.get("XDG_STATE_HOME"):
        return Path(xdg).expanduser() / APP_DIR_NAME
    return Path.home() / ".local" / "state" / APP_DIR_NAME


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
    surface: str = "core"
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
    state_dir: Path = field(default_factory=lambda: resolve_state_dir({}))
    sandbox_faults: Mapping[str, str] = field(default_factory=dict)
    sandbox_webhook_hosts: tuple[str, ...] = ()

    @property
    def call_deadline(self) -> float:
        """Seconds one logical Drip call may take (`call_deadline` of `timeout` and `max_retries`)."""
        return call_deadline(self.timeout, self.max_retries)

    state_url: str | None = field(default=None, repr=False)  # may carry a database password
    state_key: str | None = field(default=None, repr=False)
    max_sessions_per_tenant: int = DEFAULT_MAX_SESSIONS_PER_TENANT

    @property
    def sandbox_db_path(self) -> Path:
        """The sandbox database for ``drip-mcp sandbox``: `sandbox_db`, else ``<state dir>/sandbox.db``."""
        return self.sandbox_db or self.state_dir / "sandbox.db"

    @property
    def secrets_dir(self) -> Path:
        """Where webhook signing secrets are written (one 0600 file each)."""
        return self.state_dir / "webhook-secrets"

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
        surface: str | None = None,
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
        state_url: str | None = None,
        max_sessions_per_tenant: int | None = None,
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

        chosen_surface = (surface or env.get("DRIP_SURFACE") or "core").strip().lower()
        if chosen_surface not in SURFACES:
            raise ConfigurationError(f"surface must be 'core' or 'full' (got {chosen_surface!r})")

        policy = (metadata_policy or env.get("DRIP_METADATA_POLICY") or "redact").strip().lower()
        if policy not in METADATA_POLICIES:
            raise ConfigurationError(f"metadata policy must be 'redact' or 'strict' (got {policy!r})")

        resolved_url = normalize_base_url(url)
        if key is not None and not sandbox and (warning := check_key_transport(key, resolved_url)):
            print(warning, file=sys.stderr, flush=True)

        db = sandbox_db if sandbox_db is not None else env.get("DRIP_SANDBOX_DB")
        outbox_path = outbox if outbox is not None else env.get("DRIP_MCP_OUTBOX")
        state = resolve_state_dir(env)
        shared_url = (state_url or env.get(STATE_URL_ENV, "")).strip() or None
        if shared_url is not None and not shared_url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError("--state-url (DRIP_MCP_STATE_URL) must be a postgresql:// URL")
        sessions = _parse_number(
            "max sessions per tenant",
            max_sessions_per_tenant
            if max_sessions_per_tenant is not None
            else env.get("DRIP_MCP_MAX_SESSIONS_PER_TENANT", DEFAULT_MAX_SESSIONS_PER_TENANT),
            minimum=1,
            integer=True,
        )
        return cls(
            api_key=key,
            base_url=resolved_url,
            timeout=resolved_timeout,
            max_retries=int(resolved_retries),
            sandbox=sandbox,
            sandbox_db=Path(db).expanduser() if db else (state / "sandbox.db" if sandbox else None),
            surface=chosen_surface,
            toolsets=chosen_toolsets or TOOLSETS,
            tools=_parse_list(tools if tools is not None else env.get("DRIP_TOOLS", "")),
            exclude_tools=_parse_list(
                exclude_tools if exclude_tools is not None else env.get("DRIP_EXCLUDE_TOOLS", "")
            ),
            read_only=read_only
            if read_only is not None
            else _parse_bool("DRIP_READ_ONLY", env.get("DRIP_READ_ONLY", "")),
            metadata_policy=policy,
            outbox=Path(outbox_path).expanduser() if outbox_path else state / "outbox.db",
            max_charge_usdc=_parse_amount("max charge", max_charge_usdc, env.get("DRIP_MAX_CHARGE_USDC")),
            session_budget_usdc=_parse_amount(
                "session budget", session_budget_usdc, env.get("DRIP_SESSION_BUDGET_USDC")
            ),
            max_quantity=_parse_amount("max quantity", max_quantity, env.get("DRIP_MAX_QUANTITY")),
            confirm_charges=confirm_charges
            if confirm_charges is not None
            else _parse_bool("DRIP_CONFIRM_CHARGES", env.get("DRIP_CONFIRM_CHARGES", "")),
            state_dir=state,
            sandbox_faults={name: env[name] for name in SANDBOX_FAULT_ENV if env.get(name)},
            sandbox_webhook_hosts=_parse_list(env.get("DRIP_SANDBOX_WEBHOOK_HOSTS", "")),
            state_url=shared_url,
            state_key=env.get(STATE_KEY_ENV, "").strip() or None,
            max_sessions_per_tenant=int(sessions),
        )


def auth_token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The HTTP bearer token from ``DRIP_MCP_AUTH_TOKEN`` (None when unset or blank)."""
    env = os.environ if environ is None else environ
    return env.get(AUTH_TOKEN_ENV, "").strip() or None


@dataclass(frozen=True)
class OAuthEnvironment:
    """OAuth resource-server values from the environment (None when unset or blank); flags beat them."""

    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> OAuthEnvironment:
        env = os.environ if environ is None else environ
        return cls(
            issuer=env.get(OAUTH_ISSUER_ENV, "").strip() or None,
            audience=env.get(OAUTH_AUDIENCE_ENV, "").strip() or None,
            jwks_url=env.get(OAUTH_JWKS_URL_ENV, "").strip() or None,
        )


@dataclass(frozen=True)
class WorkerEnvironment:
    """What a uvicorn worker process of ``--workers N`` reads: the JSON config, key, token and log level."""

    config: str
    api_key: str = field(repr=False)
    auth_token: str | None = field(repr=False)
    log_level: str
    state_url: str | None = field(default=None, repr=False)
    state_key: str | None = field(default=None, repr=False)

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> WorkerEnvironment:
        env = os.environ if environ is None else environ
        config = env.get(WORKER_CONFIG_ENV)
        if not config:
            raise ConfigurationError(f"{WORKER_CONFIG_ENV} is not set: start workers with `drip-mcp --workers N ...`")
        return cls(
            config=config,
            api_key=env.get("DRIP_API_KEY", "").strip(),
            auth_token=auth_token_from_env(env),
            log_level=env.get(LOG_LEVEL_ENV, "WARNING"),
            state_url=env.get(STATE_URL_ENV, "").strip() or None,
            state_key=env.get(STATE_KEY_ENV, "").strip() or None,
        )
