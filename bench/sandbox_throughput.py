"""Measure sandbox usage writes per second (``POST /v1/usage/internal``).

Two bounded runs: in-process through ``httpx2.ASGITransport``, and over a
loopback socket against ``serve()`` in a subprocess (uvicorn). Each run keeps
`--concurrency` requests in flight for `--seconds` and prints writes/s, then
checks that every acknowledged write is in the database.

    python bench/sandbox_throughput.py [--seconds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2

from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.sandbox.store import Store

HEADERS = {"Authorization": "Bearer sk_test_benchmark00"}
LISTENING = re.compile(r"listening on (http://\S+)/v1")


async def _hammer(client: httpx2.AsyncClient, seconds: float, concurrency: int) -> int:
    created = await client.post("/v1/customers", json={"externalCustomerId": "bench"}, headers=HEADERS)
    customer_id = created.json()["id"]
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            body = {
                "customerId": customer_id,
                "usageType": "api_calls",
                "quantity": 1,
                "idempotencyKey": f"bench-{next(counter)}",
            }
            response = await client.post("/v1/usage/internal", json=body, headers=HEADERS)
            if response.status_code != 201:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
            done += 1

    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    return done


def _report(label: str, writes: int, elapsed: float, stored: int) -> None:
    print(f"{label}: {writes} writes in {elapsed:.2f}s = {writes / elapsed:,.0f} writes/s (stored: {stored})")


async def bench_in_process(db: Path, seconds: float, concurrency: int) -> None:
    sandbox = Sandbox(SandboxConfig(db_path=db))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=sandbox.app), base_url="http://bench") as client:
        start = time.perf_counter()
        writes = await _hammer(client, seconds, concurrency)
        elapsed = time.perf_counter() - start
    _report("in-process (ASGITransport)", writes, elapsed, sandbox.store.count_usage_events())
    sandbox.store.close()


@contextmanager
def served(db: Path) -> Iterator[tuple[str, int]]:
    """Run ``serve(port=0)`` in a subprocess; yield its root URL and pid."""
    code = (
        f"from pathlib import Path; from drip_mcp.sandbox.serve import serve; serve(port=0, db_path=Path({str(db)!r}))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        line = process.stderr.readline()
        match = LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield match.group(1), process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_socket(root: str, seconds: float, concurrency: int) -> int:
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=root, limits=limits) as client:
        return await _hammer(client, seconds, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(bench_in_process, Path(tmp) / "in-process.db", args.seconds, args.concurrency)
        db = Path(tmp) / "socket.db"
        with served(db) as (root, pid):
            cpu_before = _cpu_seconds(pid)
            start = time.perf_counter()
            writes = anyio.run(bench_socket, root, args.seconds, args.concurrency)
            elapsed = time.perf_counter() - start
            server_cpu = _cpu_seconds(pid) - cpu_before
        store = Store(db)
        _report("loopback socket (uvicorn)", writes, elapsed, store.count_usage_events())
        store.close()
        per_write = server_cpu / max(writes, 1)
        print(
            f"  sandbox server CPU per write: {per_write * 1e3:.3f} ms, i.e. ~{1 / per_write:,.0f} writes/s per core"
            " for the server alone (the load generator shares this 2-core machine)"
        )


if __name__ == "__main__":
    main()
