"""Run the sandbox as a real server on a loopback socket, and receive its webhooks, for the SDK tests.

Shared by `tests/sandbox/test_sdk_compat.py` and the per-method harnesses in `tests/sdk/`. It lives in
`tests/` (which pytest puts on `sys.path` for the root conftest), like `transport_helpers.py`.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

__all__ = ["LISTENING", "Delivery", "running_sandbox", "webhook_receiver"]

LISTENING = re.compile(r"^drip-mcp sandbox listening on (http://127\.0\.0\.1:(\d+))/v1 \(db: (.+)\)$")

# One received webhook: (raw body, X-Drip-Signature header).
Delivery = tuple[str, str]


@contextmanager
def running_sandbox(db_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``drip-mcp sandbox --port 0`` in a subprocess; yield its root URL (no `/v1`) once it says it listens."""
    command = [sys.executable, "-m", "drip_mcp", "sandbox", "--port", "0", "--db", str(db_path)]
    env = {**os.environ, **(extra_env or {})}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def pump() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        line = lines.get(timeout=20).rstrip("\n")
        match = LISTENING.match(line)
        assert match is not None, line
        assert match.group(3) == str(db_path)
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        stderr.close()


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, queue.Queue[Delivery]]]:
    """A loopback HTTP receiver; yields its URL and a queue of the POSTs it got (each answered 200)."""
    received: queue.Queue[Delivery] = queue.Queue()

    class Captured(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            received.put((body, self.headers.get("X-Drip-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    server = HTTPServer(("127.0.0.1", 0), Captured)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
