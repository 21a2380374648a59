"""Tests for drip_mcp.redaction: metadata sanitizing and text scrubbing."""

from __future__ import annotations

import copy
import enum
import json
import os
import subprocess
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drip_mcp.redaction import (
    REDACTED,
    MetadataPolicy,
    MetadataRejected,
    RedactionLimits,
    Sanitized,
    is_sensitive_key,
    looks_sensitive,
    sanitize_metadata,
    scrub_text,
)

REDACT = MetadataPolicy.REDACT
STRICT = MetadataPolicy.STRICT
REPO_ROOT = Path(__file__).resolve().parents[2]

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)

# (value, kind looks_sensitive must report)
SECRET_SAMPLES = [
    pytest.param("jane.doe@example.com", "email", id="email-plain"),
    pytest.param("Jane.Doe+billing@mail.example.co.uk", "email", id="email-plus-subdomain"),
    pytest.param("ops team <OPS@EXAMPLE.ORG>", "email", id="email-uppercase-in-name"),
    pytest.param("mailto:a_b@x.io", "email", id="email-mailto"),
    pytest.param("4111 1111 1111 1111", "card_number", id="card-visa-spaces"),
    pytest.param("4012-8888-8888-1881", "card_number", id="card-visa-dashes"),
    pytest.param("5555555555554444", "card_number", id="card-mastercard"),
    pytest.param("2223 0031 2200 3222", "card_number", id="card-mastercard-2series"),
    pytest.param("3782 822463 10005", "card_number", id="card-amex"),
    pytest.param("6011-1111-1111-1117", "card_number", id="card-discover"),
    pytest.param("3530111333300000", "card_number", id="card-jcb"),
    pytest.param("3056 930902 5904", "card_number", id="card-diners"),
    pytest.param("sk_live_51HxYzAbCdEf123456", "drip_key", id="drip-sk-live"),
    pytest.param("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "drip_key", id="drip-sk-test"),
    pytest.param("pk_live_9fA2bC7dE1fG3hJ5", "drip_key", id="drip-pk-live"),
    pytest.param("pk_test_TYooMQauvdEDq54NiTphI7jx", "drip_key", id="drip-pk-test"),
    pytest.param("rk_live_51HxYzAbCdEf123456", "stripe_key", id="stripe-restricted"),
    pytest.param("whsec_5fZ3kQp9Xr2LmN8v", "webhook_secret", id="webhook-secret"),
    pytest.param("Bearer 9f8e7d6c5b4a3f2e1d0c", "bearer_token", id="bearer-opaque"),
    pytest.param("authorization: bearer abc.DEF-123_xyz", "bearer_token", id="bearer-header-lowercase"),
    pytest.param(JWT, "jwt", id="jwt"),
    pytest.param("AKIAIOSFODNN7EXAMPLE", "aws_access_key", id="aws-akia"),
    pytest.param("ASIAY34FZKBOKMUTVV7A", "aws_access_key", id="aws-asia"),
    pytest.param("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "github_token", id="github-ghp"),
    pytest.param("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_token", id="github-pat"),
    pytest.param("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token", id="slack-bot"),
    pytest.param(
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "slack_webhook",
        id="slack-webhook",
    ),
    pytest.param("sk-proj-abc123DEF456ghi789JKL012mno345", "openai_key", id="openai"),
    pytest.param("sk-ant-api03-abcdefghij1234567890XYZ_abc", "anthropic_key", id="anthropic"),
    pytest.param("AIzaSyA-1234567890abcdefghijklmnopqrstu", "google_api_key", id="google"),
    pytest.param("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x", "private_key", id="pem-rsa"),
    pytest.param("-----BEGIN OPENSSH PRIVATE KEY-----", "private_key", id="pem-openssh-header"),
    pytest.param("+14155552671", "phone", id="phone-e164"),
    pytest.param("+1 (415) 555-2671", "phone", id="phone-intl-us-formatted"),
    pytest.param("(415) 555-2671", "phone", id="phone-us-parens"),
    pytest.param("415-555-2671", "phone", id="phone-us-dashes"),
    pytest.param("+44 20 7946 0958", "phone", id="phone-uk-intl"),
    pytest.param("+44 (0)20 7946 0958", "phone", id="phone-uk-trunk"),
    pytest.param("020 7946 0958", "phone", id="phone-uk-national"),
    pytest.param("07700 900123", "phone", id="phone-uk-mobile"),
    pytest.param("call me on +1 415 555 2671 tomorrow", "phone", id="phone-in-sentence"),
    pytest.param("123-45-6789", "ssn", id="ssn"),
    pytest.param("GB82 WEST 1234 5698 7654 32", "iban", id="iban-gb-spaced"),
    pytest.param("DE89370400440532013000", "iban", id="iban-de-compact"),
    pytest.param("postgres://admin:s3cr3t@db.internal:5432/app", "url_credentials", id="url-credentials"),
    pytest.param("https://api.example.com/v1/usage?api_key=abc123", "secret_param", id="url-api-key-param"),
    pytest.param("password=hunter2", "secret_assignment", id="password-assignment"),
    pytest.param("Basic dXNlcjpwYXNzd29yZA==", "basic_auth", id="basic-auth"),
]
SECRET_VALUES = [p.values[0] for p in SECRET_SAMPLES]

# (key, value): operational context that must pass untouched.
BENIGN = [
    pytest.param("model", "gpt-4o-mini", id="model-gpt"),
    pytest.param("model", "claude-sonnet-4-5", id="model-claude"),
    pytest.param("model", "llama-3.1-70b", id="model-llama"),
    pytest.param("tool", "web_search", id="tool-web-search"),
    pytest.param("tool", "code_interpreter", id="tool-code-interpreter"),
    pytest.param("status_code", 200, id="http-status-int"),
    pytest.param("status_code", "429", id="http-status-str"),
    pytest.param("status", "ok", id="status-ok"),
    pytest.param("latency_ms", 123.4, id="latency-float"),
    pytest.param("latency", "850ms", id="latency-str"),
    pytest.param("count", 42, id="count"),
    pytest.param("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", id="sha256-digest"),
    pytest.param("git_sha", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", id="git-sha"),
    pytest.param("request_id", "550e8400-e29b-41d4-a716-446655440000", id="uuid"),
    pytest.param("started_at", "2024-11-23T10:15:30.123Z", id="iso-timestamp"),
    pytest.param("started_at", "2024-11-23T10:15:30+00:00", id="iso-timestamp-offset"),
    pytest.param("ts", 1732370000, id="unix-seconds"),
    pytest.param("ts_ms", 1732370000123, id="unix-ms"),
    pytest.param("ts_ms", 1732370000009, id="unix-ms-luhn-valid"),
    pytest.param("ts_ms", "1732370000009", id="unix-ms-luhn-valid-str"),
    pytest.param("seq", 1000000000000008, id="luhn-valid-without-card-prefix"),
    pytest.param("region", "us-east-1", id="region"),
    pytest.param("version", "1.2.3", id="semver"),
    pytest.param("endpoint", "/v1/usage", id="url-path"),
    pytest.param("url", "https://api.drip.example/v1/usage?limit=10", id="url-without-credentials"),
    pytest.param("method", "POST", id="http-method"),
    pytest.param("ext", ".json", id="file-extension"),
    pytest.param("cached", True, id="bool"),
    pytest.param("parent_run", None, id="null"),
    pytest.param("prompt_tokens", 120, id="prompt-tokens"),
    pytest.param("completion_tokens", 80, id="completion-tokens"),
    pytest.param("input_tokens", 1000, id="input-tokens"),
    pytest.param("output_tokens", 250, id="output-tokens"),
    pytest.param("token_count", 1330, id="token-count"),
    pytest.param("tokens_used", 1330, id="tokens-used"),
    pytest.param("cache_read_tokens", 512, id="cache-read-tokens"),
    pytest.param("max_tokens", 4096, id="max-tokens"),
    pytest.param("prompt_tokens_details", {"cached_tokens": 0, "audio_tokens": 0}, id="usage-details"),
    pytest.param("content_type", "application/json", id="content-type"),
    pytest.param("customer_id", "cus_8f3a2b", id="customer-id"),
    pytest.param("finish_reason", "stop", id="finish-reason"),
    pytest.param("cost_usdc", "0.0042", id="cost"),
    pytest.param("tokenizer", "cl100k_base", id="tokenizer"),
    pytest.param("prompt_id", "summarize-v3", id="prompt-id-label"),
    pytest.param("error_message", "rate limited, retry after 2s", id="error-message"),
    pytest.param(
        "image",
        "ghcr.io/acme/agent@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        id="image-digest-with-at",
    ),
    pytest.param("date", "2024-11-23", id="date"),
    pytest.param("author", "release-bot", id="author-is-not-auth"),
]

# Keys whose value is redacted whatever it looks like.
SENSITIVE_KEYS = [
    pytest.param("prompt", "write me a poem", id="prompt"),
    pytest.param("system_prompt", "You are helpful", id="system-prompt"),
    pytest.param("completion", "ok", id="completion"),
    pytest.param("messages", [{"role": "user", "content": "hi"}], id="messages"),
    pytest.param("input", "hello", id="input"),
    pytest.param("output_text", "done", id="output-text"),
    pytest.param("response", {"text": "fine"}, id="response-object"),
    pytest.param("email", "n/a", id="email"),
    pytest.param("phone_number", "n/a", id="phone-number"),
    pytest.param("home_address", "somewhere", id="address"),
    pytest.param("ssn", "n/a", id="ssn"),
    pytest.param("password", "x", id="password"),
    pytest.param("password", 1234, id="password-int"),
    pytest.param("passwd", "x", id="passwd"),
    pytest.param("client_secret", "x", id="client-secret"),
    pytest.param("token", "abc", id="token"),
    pytest.param("api_token", "abc", id="api-token"),
    pytest.param("api_key", "abc", id="api-key"),
    pytest.param("apiKey", "abc", id="api-key-camel"),
    pytest.param("x-api-key", "abc", id="x-api-key"),
    pytest.param("DRIP_API_KEY", "abc", id="env-var-name"),
    pytest.param("access_key", "abc", id="access-key"),
    pytest.param("private_key", "abc", id="private-key"),
    pytest.param("authorization", "abc", id="authorization"),
    pytest.param("Authorization", "abc", id="authorization-capitalised"),
    pytest.param("AUTHORIZATION", "abc", id="authorization-upper"),
    pytest.param("auth", {"type": "oauth"}, id="auth-object"),
    pytest.param("cookie", "a=b", id="cookie"),
    pytest.param("session", "abc", id="session"),
    pytest.param("session_id", "abc", id="session-id"),
    pytest.param("credentials", "abc", id="credentials"),
    pytest.param("user.email", "n/a", id="dotted-user-email"),
    pytest.param("env", "production", id="env"),
    pytest.param("environment", {"HOME": "/root"}, id="environment"),
    pytest.param("credit_card", "visa", id="credit-card"),
    pytest.param("card_number", "n/a", id="card-number"),
    pytest.param("cvv", 123, id="cvv"),
    pytest.param("token_count", "abc", id="count-key-with-text"),
    pytest.param("prompt_tokens", "write me a poem", id="token-key-with-text"),
]


def _paths_of(result: Sanitized) -> tuple[str, ...]:
    return result.redacted_paths


def _all_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _all_strings(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _all_strings(item)


# --------------------------------------------------------------------------- secret values


@pytest.mark.parametrize(("secret", "kind"), SECRET_SAMPLES)
def test_secret_value_is_detected_with_its_kind(secret: str, kind: str) -> None:
    assert looks_sensitive(secret) == kind


@pytest.mark.parametrize(("secret", "kind"), SECRET_SAMPLES)
def test_secret_value_under_benign_key_is_redacted_and_its_path_recorded(secret: str, kind: str) -> None:
    result = sanitize_metadata({"model": "gpt-4o-mini", "note": secret})

    assert result.value == {"model": "gpt-4o-mini", "note": REDACTED}
    assert result.redacted_paths == ("metadata.note",)


@pytest.mark.parametrize(("secret", "kind"), SECRET_SAMPLES)
def test_secret_value_is_rejected_under_strict_without_echoing_it(secret: str, kind: str) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"model": "gpt-4o-mini", "note": secret}, policy=STRICT)

    assert info.value.reason == "sensitive"
    assert info.value.paths == ("metadata.note",)
    assert kind in str(info.value)
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    "number",
    [4111111111111111, 5555555555554444, 378282246310005],
    ids=["visa", "mastercard", "amex"],
)
def test_integer_card_number_is_redacted(number: int) -> None:
    result = sanitize_metadata({"ref": number})

    assert result.value == {"ref": REDACTED}
    assert result.redacted_paths == ("metadata.ref",)


def test_luhn_invalid_card_shaped_number_passes() -> None:
    result = sanitize_metadata({"ref": "4111 1111 1111 1112", "n": 4111111111111112})

    assert result.redacted_paths == ()


def test_secret_in_a_key_name_redacts_the_entry_and_masks_the_path() -> None:
    secret = "sk_live_51HxYzAbCdEf123456"

    result = sanitize_metadata({secret: 1, "model": "gpt-4o"})

    assert result.value == {REDACTED: REDACTED, "model": "gpt-4o"}
    assert len(result.redacted_paths) == 1
    assert secret not in result.redacted_paths[0]
    assert result.redacted_paths[0].startswith("metadata[")


def test_email_as_key_name_is_redacted() -> None:
    result = sanitize_metadata({"usage": {"jane.doe@example.com": 3}})

    assert result.value == {"usage": {REDACTED: REDACTED}}
    assert "jane.doe@example.com" not in json.dumps(result.redacted_paths)


# --------------------------------------------------------------------------- benign values


@pytest.mark.parametrize(("key", "value"), BENIGN)
def test_benign_operational_value_passes_untouched(key: str, value: Any) -> None:
    metadata = {key: value}

    result = sanitize_metadata(metadata, policy=STRICT)

    assert result.value == metadata
    assert result.redacted_paths == ()


def test_typical_metadata_passes_untouched_as_a_new_object() -> None:
    metadata = {
        "model": "claude-sonnet-4-5",
        "tool": "web_search",
        "status": 200,
        "latency_ms": 850.5,
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 0},
        "tags": ["batch", "us-east-1"],
    }

    result = sanitize_metadata(metadata)

    assert result.value == metadata
    assert result.value is not metadata
    assert result.value["usage"] is not metadata["usage"]
    assert result.value["tags"] is not metadata["tags"]
    assert result.redacted_paths == ()


def test_none_metadata_gives_none() -> None:
    assert sanitize_metadata(None) == Sanitized(value=None, redacted_paths=())


def test_json_scalar_subclasses_and_tuples_become_plain_json_types() -> None:
    class Tier(str, enum.Enum):
        PRO = "pro"

    class Level(enum.IntEnum):
        HIGH = 3

    metadata = types.MappingProxyType({"tier": Tier.PRO, "level": Level.HIGH, "dims": (1, 2), "o": OrderedDict(a=1)})

    result = sanitize_metadata(metadata)

    assert result.value == {"tier": "pro", "level": 3, "dims": [1, 2], "o": {"a": 1}}
    assert type(result.value["tier"]) is str
    assert type(result.value["level"]) is int
    assert type(result.value["o"]) is dict
    json.dumps(result.value)


# --------------------------------------------------------------------------- key names


@pytest.mark.parametrize(("key", "value"), SENSITIVE_KEYS)
def test_sensitive_key_is_redacted_even_with_a_benign_looking_value(key: str, value: Any) -> None:
    result = sanitize_metadata({key: value, "model": "gpt-4o"})

    assert result.value is not None
    assert result.value[key] == REDACTED
    assert result.value["model"] == "gpt-4o"
    assert len(result.redacted_paths) == 1
    assert result.redacted_paths[0] in (f"metadata.{key}", f"metadata[{json.dumps(key)}]")


@pytest.mark.parametrize(("key", "value"), SENSITIVE_KEYS)
def test_sensitive_key_is_rejected_under_strict(key: str, value: Any) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({key: value}, policy=STRICT)

    assert info.value.reason == "sensitive"
    assert len(info.value.paths) == 1


@pytest.mark.parametrize(
    "name",
    ["prompt", "completion", "messages", "email", "password", "api_key", "authorization", "Authorization",
     "x-api-key", "user.email", "userEmail", "env", "api_token", "session_id", "AccessToken", "creditCardNumber"],
)  # fmt: skip
def test_is_sensitive_key_true_for_secret_and_content_names(name: str) -> None:
    assert is_sensitive_key(name) is True


@pytest.mark.parametrize(
    "name",
    ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "token_count", "tokens_used",
     "cache_read_tokens", "max_tokens", "prompt_id", "prompt_version", "content_type", "input_type", "model",
     "tool", "status", "latency_ms", "tokenizer", "author", "oauth_provider", "microphone_enabled",
     "error_message", "request_id", "session_ms", "idempotency_key"],
)  # fmt: skip
def test_is_sensitive_key_false_for_counts_labels_and_operational_names(name: str) -> None:
    assert is_sensitive_key(name) is False


def test_is_sensitive_key_true_for_a_secret_looking_key() -> None:
    assert is_sensitive_key("sk_test_4eC39HqLyjWDarjtT1zdp7dc") is True


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("prompt_tokens", 120),
        ("completion_tokens", 80.0),
        ("input_tokens", "1,024"),
        ("token_count", 12),
        ("session_ms", "850ms"),
        ("num_sessions", 3),
        ("password_length", 12),
        ("api_key_count", [1, 2]),
        ("password", None),
        ("has_password", True),
        ("prompt", 3),
    ],
)
def test_count_or_boolean_value_under_sensitive_word_key_is_kept(key: str, value: Any) -> None:
    result = sanitize_metadata({key: value}, policy=STRICT)

    assert result.value == {key: value}


def test_nested_sensitive_key_is_redacted_at_its_nested_path() -> None:
    result = sanitize_metadata({"user": {"email": "n/a", "plan": "pro"}})

    assert result.value == {"user": {"email": REDACTED, "plan": "pro"}}
    assert result.redacted_paths == ("metadata.user.email",)


# --------------------------------------------------------------------------- paths


def test_nested_and_list_paths_are_reported() -> None:
    metadata = {
        "steps": [
            {"tool": "web_search"},
            {"tool": "mailer", "args": {"to": "jane@example.com", "auth": {"token": "abc"}}},
        ],
        "matrix": [[1, 2], ["ok", "+14155552671"]],
    }

    result = sanitize_metadata(metadata, path="events[2].metadata")

    assert result.redacted_paths == (
        "events[2].metadata.steps[1].args.to",
        "events[2].metadata.steps[1].args.auth",
        "events[2].metadata.matrix[1][1]",
    )
    assert result.value == {
        "steps": [{"tool": "web_search"}, {"tool": "mailer", "args": {"to": REDACTED, "auth": REDACTED}}],
        "matrix": [[1, 2], ["ok", REDACTED]],
    }


def test_keys_with_dots_or_spaces_are_quoted_in_paths() -> None:
    result = sanitize_metadata({"user.email": "x", "a b": "jane@example.com"})

    assert result.redacted_paths == ('metadata["user.email"]', 'metadata["a b"]')


def test_strict_reports_every_offending_path() -> None:
    metadata = {"prompt": "hi", "ok": 1, "list": ["jane@example.com", "fine", "123-45-6789"]}

    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(metadata, policy=STRICT)

    assert info.value.paths == ("metadata.prompt", "metadata.list[0]", "metadata.list[2]")
    message = str(info.value)
    assert all(path in message for path in info.value.paths)
    assert "\n" not in message
    assert "operational context" in message
    assert "jane@example.com" not in message


def test_input_is_never_mutated() -> None:
    metadata = {
        "prompt": "hi",
        "user": {"email": "jane@example.com", "tags": ["a", "4111 1111 1111 1111"]},
        "sk_live_51HxYzAbCdEf123456": 1,
    }
    before = copy.deepcopy(metadata)

    sanitize_metadata(metadata)
    with pytest.raises(MetadataRejected):
        sanitize_metadata(metadata, policy=STRICT)

    assert metadata == before


# --------------------------------------------------------------------------- limits

BOTH_POLICIES = pytest.mark.parametrize("policy", [REDACT, STRICT], ids=["redact", "strict"])


def _nested(depth: int) -> dict[str, Any]:
    """A dict `depth` levels deep: {"l1": {"l2": ... {"leaf": 1}}}."""
    node: dict[str, Any] = {"leaf": 1}
    for level in range(depth - 1, 0, -1):
        node = {f"l{level}": node}
    return node


@BOTH_POLICIES
def test_depth_at_the_limit_passes(policy: MetadataPolicy) -> None:
    metadata = _nested(5)

    assert sanitize_metadata(metadata, policy=policy).value == metadata


@BOTH_POLICIES
def test_too_deep_is_rejected_with_the_path(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(_nested(6), policy=policy)

    assert info.value.reason == "too_deep"
    assert info.value.paths == ("metadata.l1.l2.l3.l4.l5",)
    assert "metadata.l1.l2.l3.l4.l5" in str(info.value)


@BOTH_POLICIES
def test_nested_lists_count_toward_depth(policy: MetadataPolicy) -> None:
    assert sanitize_metadata({"a": [[[1]]]}, policy=policy).value == {"a": [[[1]]]}
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"a": [[[[[1]]]]]}, policy=policy)
    assert info.value.reason == "too_deep"
    assert info.value.paths == ("metadata.a[0][0][0][0]",)


@BOTH_POLICIES
def test_self_referencing_metadata_is_rejected_not_recursed_forever(policy: MetadataPolicy) -> None:
    loop: dict[str, Any] = {"model": "gpt-4o"}
    loop["self"] = loop

    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(loop, policy=policy)

    assert info.value.reason == "too_deep"


@BOTH_POLICIES
def test_too_deep_under_a_sensitive_key_is_still_rejected(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"password": _nested(5)}, policy=policy)

    assert info.value.reason == "too_deep"


@BOTH_POLICIES
def test_byte_limit_counts_compact_utf8_json(policy: MetadataPolicy) -> None:
    limits = RedactionLimits(max_bytes=30)
    fits = {"a": "x" * 22}  # {"a":"xxxx..."} is exactly 30 bytes
    assert len(json.dumps(fits, separators=(",", ":")).encode()) == 30

    assert sanitize_metadata(fits, policy=policy, limits=limits).value == fits
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"a": "x" * 23}, policy=policy, limits=limits)
    assert info.value.reason == "too_large"
    assert info.value.paths == ("metadata",)
    assert "31 bytes" in str(info.value)


@BOTH_POLICIES
def test_metadata_over_the_default_byte_limit_is_rejected(policy: MetadataPolicy) -> None:
    metadata = {f"k{i}": "x" * 2000 for i in range(9)}

    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(metadata, policy=policy, path="events[0].metadata")

    assert info.value.reason == "too_large"
    assert info.value.paths == ("events[0].metadata",)


@BOTH_POLICIES
def test_key_count_counts_nested_keys(policy: MetadataPolicy) -> None:
    exactly = {f"k{i}": i for i in range(200)}
    assert sanitize_metadata(exactly, policy=policy).value == exactly

    nested = {"a": {f"k{i}": i for i in range(100)}, "b": {f"k{i}": i for i in range(99)}}
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(nested, policy=policy)
    assert info.value.reason == "too_many_keys"
    assert info.value.paths == ("metadata.b",)


@BOTH_POLICIES
def test_overlong_string_is_rejected_not_truncated(policy: MetadataPolicy) -> None:
    assert sanitize_metadata({"note": "x" * 2048}, policy=policy).value == {"note": "x" * 2048}

    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"note": "x" * 2049}, policy=policy)

    assert info.value.reason == "string_too_long"
    assert info.value.paths == ("metadata.note",)
    assert "metadata.note" in str(info.value)


@BOTH_POLICIES
def test_overlong_key_is_rejected(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"k" * 3000: 1}, policy=policy)

    assert info.value.reason == "string_too_long"
    assert len(str(info.value)) < 400


@BOTH_POLICIES
@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        b"bytes",
        {1, 2},
        Decimal("1.5"),
        object(),
        2**64,
    ],
    ids=["nan", "inf", "-inf", "bytes", "set", "decimal", "object", "int-over-64-bits"],
)
def test_non_json_value_is_rejected_with_the_path(policy: MetadataPolicy, bad: Any) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"ok": 1, "stats": {"value": bad}}, policy=policy)

    assert info.value.reason == "not_json"
    assert info.value.paths == ("metadata.stats.value",)
    assert "metadata.stats.value" in str(info.value)


@BOTH_POLICIES
def test_nan_under_a_sensitive_key_is_still_rejected(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"prompt": [float("nan")]}, policy=policy)

    assert info.value.reason == "not_json"
    assert info.value.paths == ("metadata.prompt[0]",)


@BOTH_POLICIES
def test_non_string_key_is_rejected(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"a": {1: "x"}}, policy=policy)

    assert info.value.reason == "not_json"
    assert info.value.paths == ("metadata.a",)


@pytest.mark.parametrize("bad", [["a"], "text", 3], ids=["list", "str", "int"])
def test_non_object_metadata_is_rejected(bad: Any) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata(bad)

    assert info.value.reason == "not_json"
    assert info.value.paths == ("metadata",)


def test_rejection_is_a_value_error_with_a_one_line_message() -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"user_email": "jane@example.com"}, policy=STRICT)

    assert isinstance(info.value, ValueError)
    assert info.value.paths == ("metadata.user_email",)
    message = str(info.value)
    assert "\n" not in message
    assert "metadata.user_email" in message
    assert "jane@example.com" not in message


# --------------------------------------------------------------------------- scrub_text


def test_scrub_text_masks_a_drip_key_in_a_sentence() -> None:
    text = "charging with key sk_test_4eC39HqLyjWDarjtT1zdp7dc failed (401)"

    assert scrub_text(text) == "charging with key sk_test_…p7dc failed (401)"


def test_scrub_text_masks_a_webhook_secret() -> None:
    scrubbed = scrub_text("rotated webhook secret whsec_5fZ3kQp9Xr2LmN8v for endpoint we_123")

    assert scrubbed == "rotated webhook secret [REDACTED] for endpoint we_123"


def test_scrub_text_keeps_the_scheme_and_masks_only_the_credential() -> None:
    assert scrub_text("Authorization: Bearer sk_live_51HxYzAbCdEf123456") == "Authorization: Bearer sk_live_…3456"
    assert scrub_text("Authorization: Bearer 9f8e7d6c5b4a3f2e1d0c") == "Authorization: Bearer [REDACTED]"
    assert (
        scrub_text("connect postgres://admin:s3cr3t@db.internal:5432/app")
        == "connect postgres://[REDACTED]@db.internal:5432/app"
    )
    assert scrub_text("GET /v1/x?api_key=abc123&limit=5") == "GET /v1/x?api_key=[REDACTED]&limit=5"


def test_scrub_text_removes_a_whole_pem_block() -> None:
    text = "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0B\n-----END PRIVATE KEY-----\nafter"

    scrubbed = scrub_text(text)

    assert scrubbed == "key:\n[REDACTED]\nafter"


@pytest.mark.parametrize(("secret", "kind"), SECRET_SAMPLES)
def test_scrub_text_removes_every_secret_sample(secret: str, kind: str) -> None:
    scrubbed = scrub_text(f"log line: {secret} end")

    assert secret not in scrubbed
    assert scrubbed.startswith("log line: ")
    assert scrubbed.endswith(" end") or kind == "private_key"


@pytest.mark.parametrize(
    "text",
    [
        "GET /v1/usage 200 in 12ms model=gpt-4o-mini",
        "charge ch_123 for cus_456 at 2024-11-23T10:15:30Z (1732370000123)",
        "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        " run 550e8400-e29b-41d4-a716-446655440000",
        "retrying after 429 (attempt 2/5, backoff 1.5s) region us-east-1 v1.2.3",
        "Bearer token missing",
        "Bearer authentication is required for /v1/usage",
        "use DRIP_API_KEY=sk_test_... from the dashboard",
        "",
    ],
)
def test_scrub_text_leaves_benign_text_alone(text: str) -> None:
    assert scrub_text(text) == text


def test_scrub_text_handles_long_adversarial_lines() -> None:
    # Catastrophic backtracking would hang here; the cost itself is measured in bench/redaction_cost.py.
    lines = [
        "password=" * 20_000,
        "a@" * 50_000,
        "+1 " * 30_000,
        "1234 " * 20_000,
        "x://a:" * 20_000,
        "eyJ" * 30_000,
        "AB12 " * 20_000,
    ]
    for line in lines:
        assert isinstance(scrub_text(line), str)
        looks_sensitive(line)


# --------------------------------------------------------------------------- cost


def test_import_compiles_no_regex() -> None:
    code = "import drip_mcp.redaction.detectors as r; print(r._rx.cache_info().currsize)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO_ROOT
    )

    assert out.stdout.strip() == "0"


# --------------------------------------------------------------------------- properties

BENIGN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-. "
keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=BENIGN_ALPHABET, max_size=30),
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)
metadata_dicts = st.dictionaries(keys, json_values, max_size=6)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(metadata=metadata_dicts, policy=st.sampled_from([REDACT, STRICT]))
def test_sanitize_never_crashes_never_mutates_and_returns_json(
    metadata: dict[str, Any], policy: MetadataPolicy
) -> None:
    before = copy.deepcopy(metadata)

    try:
        result = sanitize_metadata(metadata, policy=policy)
    except MetadataRejected:
        pass
    else:
        json.dumps(result.value, allow_nan=False)
        assert set(result.value or {}) <= set(metadata) | {REDACTED}
    assert metadata == before


def _containers(node: Any, depth: int = 1) -> Iterator[dict[str, Any] | list[Any]]:
    if isinstance(node, (dict, list)):
        if depth < 5:
            yield node
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            yield from _containers(child, depth + 1)


@PROPERTY_SETTINGS
@given(
    metadata=metadata_dicts,
    secret=st.sampled_from(SECRET_VALUES),
    wrap=st.sampled_from(["{}", "note: {} (see above)"]),
    data=st.data(),
)
def test_inserted_secret_never_survives_sanitizing(
    metadata: dict[str, Any], secret: str, wrap: str, data: st.DataObject
) -> None:
    value = wrap.format(secret)
    target = data.draw(st.sampled_from(list(_containers(metadata))))
    if isinstance(target, dict):
        target[data.draw(keys)] = value
    else:
        target.insert(data.draw(st.integers(min_value=0, max_value=len(target))), value)

    rejected: MetadataRejected | None = None
    try:
        result = sanitize_metadata(metadata)
    except MetadataRejected as exc:  # a size limit: nothing is sent at all
        rejected = exc
    if rejected is not None:
        assert rejected.reason != "sensitive"
        assert secret not in str(rejected)
        return
    assert result.redacted_paths
    assert not any(secret in s for s in _all_strings(result.value))
    assert secret not in json.dumps(result.value)
    with pytest.raises(MetadataRejected) as strict:
        sanitize_metadata(metadata, policy=STRICT)
    assert strict.value.reason == "sensitive"


@BOTH_POLICIES
def test_huge_list_is_rejected_before_it_is_walked(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"token_counts": [1] * 5_000_000}, policy=policy)

    assert info.value.reason == "too_large"
    assert info.value.paths == ("metadata.token_counts",)


@BOTH_POLICIES
def test_non_json_value_under_a_count_key_is_rejected(policy: MetadataPolicy) -> None:
    with pytest.raises(MetadataRejected) as info:
        sanitize_metadata({"token_count": Decimal("1")}, policy=policy)

    assert info.value.reason == "not_json"
