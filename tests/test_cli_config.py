"""`drip_mcp.cli.main`: configuration errors are one stderr line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from drip_mcp.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def _stderr_lines(text: str) -> list[str]:
    return text.splitlines()


def test_malformed_key_is_one_line_naming_the_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIP_API_KEY", "bad")

    assert main([]) == 2
    captured = capsys.readouterr()
    lines = _stderr_lines(captured.err)
    assert len(lines) == 1
    assert "pk_live_" in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_malformed_key_message_does_not_echo_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    almost = "sk_live_Zq81xWm4 Kd7Lp2Vn9f3a"
    monkeypatch.setenv("DRIP_API_KEY", almost)

    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert len(_stderr_lines(err)) == 1
    assert almost not in err
    assert "Zq81xWm4" not in err


def test_missing_key_hints_at_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    lines = _stderr_lines(captured.err)
    assert len(lines) == 1
    assert "--sandbox" in lines[0]
    assert "pk_live_" in lines[0]
    assert "Traceback" not in captured.err


def test_other_config_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DRIP_API_KEY", "sk_test_Zq81xWm4Kd7Lp2Vn9f3a")
    assert main(["--toolsets", "usage,bogus"]) == 2
    assert main(["--timeout", "0"]) == 2
    monkeypatch.setenv("DRIP_API_KEY", "sk_live_Zq81xWm4Kd7Lp2Vn9f3a")
    assert main(["--sandbox"]) == 2
    lines = _stderr_lines(capsys.readouterr().err)
    assert len(lines) == 3
    assert all(line.startswith("drip-mcp: ") for line in lines)


@pytest.mark.slow
def test_module_entry_point_reports_bad_key_without_traceback() -> None:
    env = {**os.environ, "DRIP_API_KEY": "bad"}
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, "-m", "drip_mcp"],
        env=env,
        capture_output=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
        text=True,
    )

    assert result.returncode == 2
    lines = _stderr_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "pk_live_" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
