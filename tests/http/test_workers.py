"""``--workers N`` (`drip_mcp.http.workers`): connections reach every worker, and a worker that dies is replaced.

Real processes on loopback: the supervisor, its spawned workers, and raw sockets as clients. Which worker
holds a connection is read from ``/proc/net/tcp`` and the workers' file descriptors (Linux).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")]

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "sk_test_workers0000000000000000"
CONNECTIONS = 16  # with two workers, all on one by chance: 2 * 2**-16
DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(parent: int) -> list[int]:
    """The worker processes of `parent` (multiprocessing's spawned interpreters)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if (
                int(stat.rpartition(")")[2].split()[1]) == parent
                and b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes()
            ):
                found.append(int(entry))
    return sorted(found)


def _tcp_rows() -> list[list[str]]:
    """The rows of /proc/net/tcp (IPv4), split into fields."""
    return [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]


def _holders(inode: str | None, pids: list[int]) -> list[int]:
    """Which of `pids` have the socket `inode` open."""
    found = []
    for pid in pids:
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        found.append(pid)
                        break
    return found


def _owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the server end of the loopback connection client_port -> server_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = next((parts[9] for parts in _tcp_rows() if parts[1] == local and parts[2] == remote), None)
    holders = _holders(inode, pids) if inode is not None else []
    return holders[0] if holders else None


def _listeners(port: int) -> list[str]:
    """The inodes of the sockets listening on 127.0.0.1:`port` (state 0A)."""
    local = f"0100007F:{port:04X}"
    return [parts[9] for parts in _tcp_rows() if parts[1] == local and parts[3] == "0A"]


def _health(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


@contextmanager
def _workers(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(
        DRIP_MCP_STATE_DIR=str(tmp_path / "state"),
        DRIP_SANDBOX_DB=str(tmp_path / "sandbox.db"),
        DRIP_API_KEY=SECRET_KEY,
        PYTHONPATH=str(ROOT),
    )
    argv = ["--sandbox", "--transport", "streamable-http", "--stateless", "--json-response", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "drip_mcp", *argv, "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _serving(
    process: subprocess.Popen[bytes], port: int, count: int, exclude: frozenset[int] = frozenset()
) -> list[int]:
    """Bounded poll until `count` workers (none of `exclude`) exist and each answered ``/health`` itself."""
    deadline = time.monotonic() + DEADLINE_S
    answered: set[int] = set()
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the supervisor exited with {process.returncode}"
        pids = [p for p in _children(process.pid) if p not in exclude]
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if _health(sock).startswith(b"HTTP/1.1 200"):
                owner = _owner(port, sock.getsockname()[1], pids)
                if owner is not None:
                    answered.add(owner)
        if len(pids) == count and answered >= set(pids):
            return pids
        time.sleep(0.05)  # bounded readiness poll of processes that are starting
    raise TimeoutError(f"workers not serving after {DEADLINE_S:.0f} s (answered: {sorted(answered)})")


def test_each_worker_listens_on_a_socket_of_its_own_and_connections_reach_both(tmp_path: Path) -> None:
    port = _free_port()
    with _workers(tmp_path, port) as process:
        pids = _serving(process, port, 2)
        holders = [_holders(inode, [process.pid, *pids]) for inode in _listeners(port)]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(CONNECTIONS)]
        try:
            replies = [_health(sock) for sock in clients]  # every connection is open before any is used
            owners = [_owner(port, sock.getsockname()[1], pids) for sock in clients]
        finally:
            for sock in clients:
                sock.close()
    # One shared listening socket (uvicorn's own supervisor) let whichever worker woke first accept a whole
    # burst of connections; a socket per worker lets the kernel spread them.
    assert sorted(holders) == sorted([pid] for pid in pids), f"listening sockets' holders {holders}, workers {pids}"
    assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies)
    assert None not in owners, f"connection owners {owners}, workers {pids}"
    assert set(owners) == set(pids), f"connections per worker: {[owners.count(p) for p in pids]}"


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_serving(tmp_path: Path) -> None:
    port = _free_port()
    with _workers(tmp_path, port) as process:
        first = _serving(process, port, 2)
        os.kill(first[0], signal.SIGKILL)
        now = _serving(process, port, 2, exclude=frozenset({first[0]}))
    assert first[0] not in now
    assert first[1] in now
    assert process.returncode == 0


def test_workers_that_cannot_start_stop_the_supervisor_instead_of_restarting_forever(tmp_path: Path) -> None:
    """Without the configuration `drip-mcp --workers` exports, every worker fails: the supervisor gives up."""
    port = _free_port()
    script = (
        "import sys\n"
        "from drip_mcp.errors import ConfigurationError\n"
        "from drip_mcp.http.workers import serve_workers\n"
        "common = {'log_level': 'critical', 'access_log': False, 'lifespan': 'on'}\n"
        "try:\n"
        f"    serve_workers(common, 2, '127.0.0.1', {port}, drain_s=1.0, ready=lambda: print('ready', flush=True))\n"
        "except ConfigurationError as exc:\n"
        "    print(exc, flush=True)\n"
        "    sys.exit(2)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}  # no DRIP_MCP_HTTP_CONFIG
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, (done.stdout, done.stderr[-2000:])
    assert done.stdout.splitlines()[0] == "ready"
    assert "did not start" in done.stdout
    with socket.socket() as sock:  # the supervisor let the port go
        sock.bind(("127.0.0.1", port))


def test_a_second_server_on_the_workers_port_is_refused_not_let_in(tmp_path: Path) -> None:
    """SO_REUSEPORT would let another process of this user join the workers' port and take a share of its
    connections: a second drip-mcp there gets the one-line "in use" error, as for any busy port."""
    port = _free_port()
    with _workers(tmp_path / "first", port) as process:
        _serving(process, port, 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
        env.update(DRIP_MCP_STATE_DIR=str(tmp_path / "second"), DRIP_API_KEY=SECRET_KEY, PYTHONPATH=str(ROOT))
        argv = ["--sandbox", "--transport", "streamable-http", "--stateless", "--workers", "2", "--port", str(port)]
        second = subprocess.run(
            [sys.executable, "-m", "drip_mcp", *argv],
            env={**env, "DRIP_SANDBOX_DB": str(tmp_path / "second.db")},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert second.returncode == 2, second.stderr
    assert len(second.stderr.splitlines()) == 1
    assert "already in use" in second.stderr


def test_workers_end_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    port = _free_port()
    with _workers(tmp_path, port) as process:
        pids = _serving(process, port, 2)
        process.kill()  # SIGKILL: the supervisor cannot stop its workers itself
        process.wait(timeout=10)
        deadline = time.monotonic() + DEADLINE_S
        alive = list(pids)
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.05)  # bounded poll: the kernel signals them, they drain and exit
        with socket.socket() as sock:
            free = sock.connect_ex(("127.0.0.1", port)) != 0
    assert alive == []
    assert free  # no orphan listens on the port


def _zombie(pid: int) -> bool:
    with suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    return False
