"""Fixtures for the MCP-feature tests: the in-process harness in both protocol modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_fixtures import MODES, Harness, open_harness


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def h(mode: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, mode) as harness:
        yield harness
