"""Run ``drip-mcp`` with measurement-only tweaks, to attribute costs (``bench/run.py --variants``).

    python bench/variants.py no-outbox [drip-mcp arguments...]
    python bench/variants.py outbox-normal,lazy-http [drip-mcp arguments...]

Variants (comma-separated; each patches drip_mcp in this process only, nothing on disk):

* ``no-outbox``: `Settings.outbox` forced to None (no SQLite write-ahead per usage write);
* ``outbox-normal``: the outbox's SQLite connection uses ``PRAGMA synchronous = NORMAL``
  instead of FULL (WAL commits no longer fsync; the WAL is synced at checkpoints);
* ``lazy-http``: the shared httpx2 client is built on the first request instead of at startup
  (its lazy imports and the TLS context, ~40 ms, leave the cold start for the first call);
* ``no-ledger``: the session ledger records nothing (no ledger row per usage write).

They exist to put a measured number on a suggested change before anyone makes it. Worker processes that
``--workers`` spawns import this module again (as ``__mp_main__``) and apply the same variants, which the
parent passes on in `ENV`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

VARIANTS = ("no-outbox", "outbox-normal", "lazy-http", "no-ledger")
ENV = "BENCH_VARIANTS"


def apply(name: str) -> None:
    if name == "no-outbox":
        from drip_mcp import settings

        original = settings.Settings.load.__func__  # type: ignore[attr-defined]

        def load(cls: type[settings.Settings], *args: Any, **kwargs: Any) -> settings.Settings:
            return dataclasses.replace(original(cls, *args, **kwargs), outbox=None)

        settings.Settings.load = classmethod(load)  # type: ignore[method-assign,assignment]
    elif name == "outbox-normal":
        from drip_mcp.api import outbox

        init = outbox.Outbox.__init__

        def patched(self: outbox.Outbox, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self._conn.execute("PRAGMA synchronous = NORMAL")

        outbox.Outbox.__init__ = patched  # type: ignore[method-assign]
    elif name == "lazy-http":
        import httpx2

        from drip_mcp.api import client

        build = client.new_http_client

        class LazyHTTP:
            """Builds the real httpx2 client (imports, TLS context) on the first request."""

            def __init__(self, **kwargs: Any) -> None:
                self._kwargs = kwargs
                self._client: httpx2.AsyncClient | None = None

            async def request(self, *args: Any, **kwargs: Any) -> httpx2.Response:
                if self._client is None:
                    self._client = build(**self._kwargs)
                return await self._client.request(*args, **kwargs)

            async def aclose(self) -> None:
                if self._client is not None:
                    await self._client.aclose()

        client.new_http_client = LazyHTTP  # type: ignore[assignment]
    elif name == "no-ledger":
        from drip_mcp.safety import ledger

        async def add(self: ledger.SessionLedger, entry: ledger.LedgerEntry, *, scope: str) -> None:
            return None

        ledger.SessionLedger.add = add  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    os.environ[ENV] = sys.argv[1]  # for the worker processes --workers spawns
    for name in filter(None, sys.argv[1].split(",")):
        apply(name)
    from drip_mcp.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
if __name__ == "__mp_main__":  # a worker process spawned by --workers: the parent's variants
    for _name in filter(None, os.environ.get(ENV, "").split(",")):
        apply(_name)
