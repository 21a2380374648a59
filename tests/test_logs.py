"""`drip_mcp.logs`: stderr logging with known secrets masked."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from drip_mcp.logs import SecretMaskingFilter, configure_logging

SECRET = "sk_live_Zq81xWm4Kd7Lp2Vn9f3a"
TOKEN = "tok_0123456789abcdefXYZW"


def make_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("drip_mcp.test", logging.INFO, __file__, 1, msg, args, None)


def test_filter_masks_secret_passed_as_format_arg() -> None:
    record = make_record("calling with key=%s and retry %d", SECRET, 2)

    assert SecretMaskingFilter([SECRET]).filter(record) is True
    message = record.getMessage()
    assert SECRET not in message
    assert "Zq81xWm4Kd7Lp2Vn" not in message
    assert message == "calling with key=sk_live_…9f3a and retry 2"


def test_filter_masks_secret_inside_msg_and_several_secrets() -> None:
    record = make_record(f"Authorization: Bearer {SECRET}; token %s", TOKEN)

    SecretMaskingFilter([SECRET, TOKEN, ""]).filter(record)
    message = record.getMessage()
    assert SECRET not in message
    assert TOKEN not in message
    assert "sk_live_…9f3a" in message


def test_filter_added_secret_is_masked() -> None:
    masking = SecretMaskingFilter([])
    masking.add(SECRET)
    record = make_record("%s", SECRET)
    masking.filter(record)
    assert SECRET not in record.getMessage()


def test_filter_leaves_clean_records_untouched() -> None:
    record = make_record("retry %d in %.3fs", 1, 0.25)
    SecretMaskingFilter([SECRET]).filter(record)
    assert record.msg == "retry %d in %.3fs"
    assert record.args == (1, 0.25)


@pytest.fixture
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("_restore_root_logger")
def test_configure_logging_writes_masked_records_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", secrets=[SECRET])
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    assert len(root.handlers) == 1
    assert getattr(root.handlers[0], "stream", None) is sys.stderr

    logging.getLogger("drip_mcp.client").debug("sending with %s", SECRET)
    captured = capsys.readouterr()

    assert captured.out == ""
    assert "sending with sk_live_…9f3a" in captured.err
    assert SECRET not in captured.err


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(SECRET.upper(), id="upper-case"),
        pytest.param(SECRET[:8] + SECRET[8:].swapcase(), id="mixed-case"),
        pytest.param(SECRET[:20], id="20-char-prefix"),
        pytest.param(SECRET[:-2], id="tail-cut"),
        pytest.param(f"key={SECRET}&x=1", id="glued"),
        pytest.param(TOKEN.upper(), id="bearer-token-upper"),
    ],
)
def test_filter_masks_secrets_in_any_case_and_partial_echoes(echo: str) -> None:
    record = make_record("upstream said %s", json.dumps({"error": "bad key", "details": [{"message": echo}]}))
    SecretMaskingFilter([SECRET, TOKEN]).filter(record)

    folded = record.getMessage().lower()
    for secret in (SECRET, TOKEN):
        body = secret[8:] if secret.startswith("sk_") else secret
        for start in range(len(body) - 12 + 1):
            assert body[start : start + 12].lower() not in folded
