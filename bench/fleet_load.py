"""The load generator of ``bench/fleet.py``: MCP ``tools/call`` as raw HTTP/1.1 POSTs, N in flight.

Stateless streamable HTTP with JSON responses makes one ``tools/call`` exactly one
POST (no ``initialize``, no ``Mcp-Session-Id``, no SSE), so the generator does not
need an MCP client: it pre-builds every request's bytes (headers ``Content-Type:
application/json``, ``Accept: application/json, text/event-stream``,
``Mcp-Protocol-Version``, ``Authorization`` when given) and keeps N keep-alive
connections, each with one request in flight. It imports nothing but the standard
library, so its own CPU per call stays small next to the servers' (it reports it).

It is a long-lived process: one JSON job per line on stdin, one JSON result per line
on stdout, until stdin closes. A job::

    {"targets": [["127.0.0.1", 8000], ...], "path": "/mcp", "auths": ["Bearer ...", ...],
     "tool": "drip_track_usage", "arguments": {...}, "protocol_version": "2025-11-25",
     "concurrency": 8, "calls": 400, "max_seconds": 10}

Connection ``i`` goes to ``targets[i % len(targets)]``; call ``k`` carries
``auths[k % len(auths)]`` (round-robin tenants; none when ``auths`` is empty). A job
stops after ``calls`` calls or once ``max_seconds`` have passed (then fewer calls are
counted), whichever comes first; each response must arrive within 30 s. A response
counts as an error unless it is HTTP 200 with a JSON-RPC ``result`` whose ``isError``
is false. The result::

    {"calls": n, "errors": n, "first_error": str | null, "elapsed_s": s, "calls_per_s": x,
     "p50_ms": x, "p90_ms": x, "p99_ms": x, "cpu_s": s}

``elapsed_s`` runs from the moment every connection is open to the last answer;
``cpu_s`` is this process's CPU over the same span.

    python bench/fleet_load.py < jobs.jsonl
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

RESPONSE_TIMEOUT_S = 30.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def build_request(host: str, port: int, job: dict[str, Any], auth: str | None) -> bytes:
    """The complete bytes of one ``tools/call`` POST."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": job["tool"], "arguments": job["arguments"]},
        },
        separators=(",", ":"),
    ).encode()
    head = [
        f"POST {job['path']} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json, text/event-stream",
        f"Mcp-Protocol-Version: {job['protocol_version']}",
        f"Content-Length: {len(body)}",
    ]
    if auth:
        head.append(f"Authorization: {auth}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: (status, body); ``Content-Length`` or chunked bodies."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def is_success(status: int, body: bytes) -> bool:
    return status == 200 and b'"result"' in body and b'"isError":false' in body


async def run_job(job: dict[str, Any]) -> dict[str, Any]:
    targets = [(str(h), int(p)) for h, p in job["targets"]]
    auths: list[str | None] = list(job.get("auths") or [None])
    requests = [[build_request(h, p, job, a) for a in auths] for h, p in targets]
    concurrency, calls = int(job["concurrency"]), int(job["calls"])
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    connections = []
    for i in range(concurrency):
        connections.append(await asyncio.open_connection(*targets[i % len(targets)]))
    deadline = time.perf_counter() + float(job["max_seconds"])

    async def connection(i: int) -> None:
        nonlocal issued
        reader, writer = connections[i]
        mine = requests[i % len(targets)]
        while issued < calls and time.perf_counter() < deadline:
            k = issued
            issued += 1
            started = time.perf_counter()
            writer.write(mine[k % len(mine)])
            status, body = await asyncio.wait_for(read_response(reader), RESPONSE_TIMEOUT_S)
            latencies.append((time.perf_counter() - started) * 1000)
            if not is_success(status, body):
                errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")

    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(connection(i) for i in range(concurrency)))
    finally:
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        for _reader, writer in connections:
            writer.close()
    return {
        "calls": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_s": elapsed,
        "calls_per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "cpu_s": cpu,
    }


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = asyncio.run(run_job(json.loads(line)))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
