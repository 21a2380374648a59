"""Fixtures for the per-toolset end-to-end tests: the in-process harness in both protocol modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_fixtures import MODES, SURFACES, Harness, open_harness


@pytest.fixture(params=MODES)
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, request.param) as harness:
        yield harness


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(params=[(mode, surface) for surface in SURFACES for mode in MODES], ids="-".join)
async def hs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The harness on both surfaces (and both protocol modes): call operations with `Harness.op`."""
    mode, surface = request.param
    async with open_harness(tmp_path, mode, surface=surface) as harness:
        yield harness
