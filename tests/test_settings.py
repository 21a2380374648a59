"""`drip_mcp.settings.Settings.load`: precedence, URL normalisation, validation, sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drip_mcp.errors import ConfigurationError
from drip_mcp.keys import KeyMode, KeyType
from drip_mcp.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    SANDBOX_PUBLIC_KEY,
    TOOLSETS,
    Settings,
    normalize_base_url,
)

SK = "sk_test_Zq81xWm4Kd7Lp2Vn9f3a"
SK_LIVE = "sk_live_Zq81xWm4Kd7Lp2Vn9f3a"
PK_LIVE = "pk_live_Zq81xWm4Kd7Lp2Vn9f3a"


def env(**extra: str) -> dict[str, str]:
    return {"DRIP_API_KEY": SK, **extra}


# --- precedence: explicit > environment > default -------------------------------------------


@pytest.mark.parametrize(
    ("field", "env_name", "explicit", "env_value", "expected_explicit", "expected_env", "default"),
    [
        (
            "base_url",
            "DRIP_API_URL",
            "https://explicit.example/v1",
            "https://env.example/v1",
            "https://explicit.example/v1",
            "https://env.example/v1",
            DEFAULT_BASE_URL,
        ),
        ("timeout", "DRIP_TIMEOUT", 5.0, "12.5", 5.0, 12.5, DEFAULT_TIMEOUT),
        ("max_retries", "DRIP_MAX_RETRIES", 7, "1", 7, 1, DEFAULT_MAX_RETRIES),
    ],
)
def test_precedence_explicit_beats_env_beats_default(
    field: str,
    env_name: str,
    explicit: Any,
    env_value: str,
    expected_explicit: Any,
    expected_env: Any,
    default: Any,
) -> None:
    both = Settings.load(env(**{env_name: env_value}), **{field: explicit})
    env_only = Settings.load(env(**{env_name: env_value}))
    neither = Settings.load(env())

    assert getattr(both, field) == expected_explicit
    assert getattr(env_only, field) == expected_env
    assert getattr(neither, field) == default


def test_explicit_zero_retries_beats_env() -> None:
    assert Settings.load(env(DRIP_MAX_RETRIES="5"), max_retries=0).max_retries == 0


def test_max_retries_is_an_int() -> None:
    settings = Settings.load(env(DRIP_MAX_RETRIES="2"))
    assert settings.max_retries == 2
    assert type(settings.max_retries) is int


def test_explicit_api_key_beats_env() -> None:
    settings = Settings.load(env(), api_key=PK_LIVE)
    assert settings.api_key.reveal() == PK_LIVE


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIP_API_KEY", SK)
    monkeypatch.setenv("DRIP_TIMEOUT", "9")
    settings = Settings.load()
    assert settings.api_key.reveal() == SK
    assert settings.timeout == 9.0


# --- base URL ---------------------------------------------------------------------------------


def test_drip_api_url_beats_drip_base_url() -> None:
    settings = Settings.load(env(DRIP_API_URL="https://api-url.example", DRIP_BASE_URL="https://base-url.example"))
    assert settings.base_url == "https://api-url.example/v1"


def test_drip_base_url_used_when_api_url_absent() -> None:
    assert Settings.load(env(DRIP_BASE_URL="https://base-url.example")).base_url == ("https://base-url.example/v1")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.example.com", "https://api.example.com/v1"),
        ("https://api.example.com/", "https://api.example.com/v1"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("https://api.example.com/v1///", "https://api.example.com/v1"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787/v1"),
        ("  https://api.example.com/v1  ", "https://api.example.com/v1"),
    ],
)
def test_v1_is_appended_once_and_trailing_slashes_stripped(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected
    assert Settings.load(env(), base_url=given).base_url == expected
    assert Settings.load(env(DRIP_API_URL=given)).base_url == expected


def test_base_url_without_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        Settings.load(env(DRIP_API_URL="api.example.com"))


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "0.05", "nan", "inf"])
def test_invalid_timeout_env_raises(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        Settings.load(env(DRIP_TIMEOUT=raw))


@pytest.mark.parametrize("value", [0, -3.0, float("nan"), float("inf")])
def test_invalid_timeout_argument_raises(value: float) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        Settings.load(env(), timeout=value)


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "inf", "nan"])
def test_invalid_max_retries_env_raises(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="retries"):
        Settings.load(env(DRIP_MAX_RETRIES=raw))


def test_negative_max_retries_argument_raises() -> None:
    with pytest.raises(ConfigurationError, match="retries"):
        Settings.load(env(), max_retries=-1)


def test_unknown_toolset_raises_and_names_it() -> None:
    with pytest.raises(ConfigurationError, match="bogus") as info:
        Settings.load(env(DRIP_TOOLSETS="usage,bogus"))
    assert "usage" in str(info.value)  # lists the valid choices


def test_unknown_toolset_argument_raises() -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        Settings.load(env(), toolsets=["billing", "nope"])


def test_toolsets_subset_and_default() -> None:
    assert Settings.load(env(DRIP_TOOLSETS=" usage , billing,usage")).toolsets == ("usage", "billing")
    assert Settings.load(env()).toolsets == TOOLSETS
    assert Settings.load(env(DRIP_TOOLSETS="usage"), toolsets="status").toolsets == ("status",)


@pytest.mark.parametrize("policy", ["loose", "none", "redacted"])
def test_invalid_metadata_policy_raises(policy: str) -> None:
    with pytest.raises(ConfigurationError, match="policy"):
        Settings.load(env(DRIP_METADATA_POLICY=policy))
    with pytest.raises(ConfigurationError, match="policy"):
        Settings.load(env(), metadata_policy=policy)


def test_metadata_policy_is_case_insensitive_and_defaults_to_redact() -> None:
    assert Settings.load(env(DRIP_METADATA_POLICY="STRICT")).metadata_policy == "strict"
    assert Settings.load(env()).metadata_policy == "redact"


def test_invalid_read_only_raises() -> None:
    with pytest.raises(ConfigurationError, match="DRIP_READ_ONLY"):
        Settings.load(env(DRIP_READ_ONLY="maybe"))


def test_missing_key_raises_with_sandbox_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.load({})
    assert "pk_live_" in str(info.value)
    assert "--sandbox" in str(info.value)


def test_malformed_key_raises() -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        Settings.load({"DRIP_API_KEY": "bad"})


# --- sandbox ----------------------------------------------------------------------------------


def test_sandbox_without_key_uses_public_test_key(tmp_path: Path) -> None:
    settings = Settings.load({"DRIP_MCP_STATE_DIR": str(tmp_path)}, sandbox=True)

    assert settings.sandbox is True
    assert settings.api_key.reveal() == SANDBOX_PUBLIC_KEY
    assert settings.api_key.type is KeyType.PUBLIC
    assert settings.api_key.mode is KeyMode.TEST
    assert settings.sandbox_db == tmp_path / "sandbox.db"


def test_sandbox_keeps_a_configured_test_key() -> None:
    assert Settings.load(env(), sandbox=True).api_key.reveal() == SK


@pytest.mark.parametrize("live", [SK_LIVE, PK_LIVE])
def test_sandbox_refuses_live_keys(live: str) -> None:
    with pytest.raises(ConfigurationError, match="test keys"):
        Settings.load({"DRIP_API_KEY": live}, sandbox=True)
    with pytest.raises(ConfigurationError, match="test keys"):
        Settings.load({}, sandbox=True, api_key=live)


def test_not_sandbox_has_no_sandbox_db() -> None:
    assert Settings.load(env()).sandbox_db is None


# --- secrecy ----------------------------------------------------------------------------------


def test_repr_of_settings_hides_the_key() -> None:
    settings = Settings.load({"DRIP_API_KEY": SK_LIVE})
    text = repr(settings)

    assert SK_LIVE not in text
    assert "Zq81xWm4Kd7Lp2Vn" not in text
    assert "sk_live_…9f3a" in text
    assert SK_LIVE not in str(settings)
    assert SK_LIVE not in f"{settings}"


def test_hosted_mode_without_a_key_leaves_the_key_unset() -> None:
    assert Settings.load({}, require_key=False).api_key is None


def test_hosted_mode_still_validates_a_key_that_is_given() -> None:
    with pytest.raises(ConfigurationError):
        Settings.load({"DRIP_API_KEY": "bad"}, require_key=False)


def test_a_live_key_over_plain_http_to_a_remote_host_is_refused_and_a_test_key_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote = {"DRIP_API_URL": "http://api.example.test/v1"}
    with pytest.raises(ConfigurationError) as refused:
        Settings.load({**remote, "DRIP_API_KEY": "pk_live_0123456789abcdef"})
    assert "https" in str(refused.value)
    assert capsys.readouterr().err == ""
    Settings.load({**remote, "DRIP_API_KEY": "pk_test_0123456789abcdef"})
    warned = capsys.readouterr().err.splitlines()
    assert len(warned) == 1
    assert "https" in warned[0]
    for safe in ("https://api.example.test/v1", "http://127.0.0.1:8787/v1", "http://LOCALHOST/v1", "http://[::1]:9/v1"):
        Settings.load({"DRIP_API_URL": safe, "DRIP_API_KEY": "sk_live_0123456789abcdef"})
    assert capsys.readouterr().err == ""


def test_cli_exits_2_with_one_line_for_a_live_key_over_plain_http(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env |= {"DRIP_API_KEY": "pk_live_0123456789abcdef", "DRIP_API_URL": "http://api.example.test/v1"}
    env["DRIP_MCP_STATE_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "drip_mcp"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30
    )
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "https" in lines[0]
    assert "0123456789abcdef" not in lines[0]
