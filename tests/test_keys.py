"""`drip_mcp.keys`: parsing, type and mode, and masking of API keys."""

from __future__ import annotations

import pytest

from drip_mcp.errors import ConfigurationError
from drip_mcp.keys import ApiKey, KeyMode, KeyType, mask_key

SECRET_TAIL = "Zq81xWm4Kd7Lp2Vn9f3a"


@pytest.mark.parametrize(
    ("prefix", "key_type", "mode"),
    [
        ("pk_live_", KeyType.PUBLIC, KeyMode.LIVE),
        ("pk_test_", KeyType.PUBLIC, KeyMode.TEST),
        ("sk_live_", KeyType.SECRET, KeyMode.LIVE),
        ("sk_test_", KeyType.SECRET, KeyMode.TEST),
    ],
)
def test_each_prefix_parses_to_its_type_and_mode(prefix: str, key_type: KeyType, mode: KeyMode) -> None:
    key = ApiKey(prefix + SECRET_TAIL)

    assert key.type is key_type
    assert key.mode is mode
    assert key.is_live is (mode is KeyMode.LIVE)
    assert key.reveal() == prefix + SECRET_TAIL
    assert key.type.prefix == prefix[:3]


def test_minimum_length_key_is_accepted() -> None:
    assert ApiKey("sk_test_abcdefgh").reveal() == "sk_test_abcdefgh"


def test_surrounding_whitespace_is_stripped() -> None:
    assert ApiKey(f"  sk_test_{SECRET_TAIL}\n").reveal() == f"sk_test_{SECRET_TAIL}"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "sk_prod_x",
        "sk_prod_abcdefgh12345678",
        "sk_test_abc",
        "sk_test_abcdefg",
        f"sk_test_{SECRET_TAIL[:6]} {SECRET_TAIL[6:]}",
        f"sk_test_{SECRET_TAIL}\tmore",
        f"Bearer sk_test_{SECRET_TAIL}",
        f"xk_test_{SECRET_TAIL}",
        f"SK_TEST_{SECRET_TAIL}",
        f"sk_test_{SECRET_TAIL}!",
        f"sk__{SECRET_TAIL}",
    ],
)
def test_malformed_key_raises_configuration_error_without_echoing_it(raw: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ApiKey(raw)

    message = str(info.value)
    assert "pk_live_" in message  # names the expected format
    assert "\n" not in message
    if raw.strip():
        assert raw.strip() not in message
        assert raw.strip() not in repr(info.value)
        assert raw.strip() not in str(info.value.to_dict())


def test_repr_str_fstring_and_masked_never_contain_the_raw_key() -> None:
    raw = f"sk_live_{SECRET_TAIL}"
    key = ApiKey(raw)

    renderings = [repr(key), str(key), f"{key}", f"{key!r}", key.masked, "%s" % (key,), str([key])]  # noqa: UP031
    for text in renderings:
        assert raw not in text
        assert SECRET_TAIL not in text
    assert key.masked == "sk_live_…9f3a"
    assert repr(key) == "ApiKey('sk_live_…9f3a')"


def test_mask_key_shapes() -> None:
    assert mask_key("sk_test_abcd1234efgh9f3a") == "sk_test_…9f3a"
    assert mask_key("pk_live_abcdefgh") == "pk_live_…efgh"
    assert mask_key("short") == "…"
    assert mask_key("") == "…"
    assert mask_key("whsec_0123456789abcdef") == "whsec_…cdef"  # one display rule: the webhook tools show it so


def test_keys_compare_by_value_and_hash_consistently() -> None:
    a = ApiKey(f"pk_test_{SECRET_TAIL}")
    b = ApiKey(f"pk_test_{SECRET_TAIL}")
    c = ApiKey(f"sk_test_{SECRET_TAIL}")

    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != f"pk_test_{SECRET_TAIL}"


@pytest.mark.parametrize(
    ("raw", "head", "found"),
    [
        ("pk_test_abc", "pk_test_", "it has 3 characters"),
        ("sk_live_abcdefg", "sk_live_", "it has 7 characters"),
        ("pk_test_abc def ghi", "pk_test_", "characters outside that set"),
        ("sk_test_Zq81xWm4Kd7L!", "sk_test_", "characters outside that set"),
    ],
)
def test_valid_prefix_with_a_bad_rest_says_exactly_what_a_valid_key_looks_like(raw: str, head: str, found: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ApiKey(raw)

    message = str(info.value)
    assert f"after {head} it needs at least 8 of A-Z a-z 0-9 _ -, e.g. {head}local_dev_key" in message
    assert found in message
    assert raw not in message
    assert raw[8:] not in message


def test_settings_with_a_too_short_sandbox_key_says_what_a_valid_key_looks_like() -> None:
    from drip_mcp.settings import Settings

    with pytest.raises(ConfigurationError) as info:
        Settings.load({"DRIP_API_KEY": "pk_test_abc"})
    assert "after pk_test_ it needs at least 8 of A-Z a-z 0-9 _ -, e.g. pk_test_local_dev_key" in str(info.value)
    assert "pk_test_abc" not in str(info.value)
