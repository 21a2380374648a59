"""``--workers N``: N uvicorn worker processes, each accepting on a listening socket of its own.

uvicorn's own supervisor hands every worker one shared listening socket. A worker's event loop
accepts every connection waiting when it wakes, so connections opened together (a client's pool of
eight) all land on the worker that woke first and stay there (keep-alive): two workers measured one
busy and one idle (``bench/FLEET.md``). Here each worker binds its own socket to the port with
``SO_REUSEPORT`` (Linux, BSD), and the kernel spreads new connections over the workers. Only
processes of the same user may join a port that way.

`serve_workers` refuses a port already in use (a second drip-mcp's workers included), in one line, and
then holds it with a bound socket that does not listen, so no other program takes the port while workers
restart. Workers end when the supervisor does, even when it is killed (Linux). It starts the
workers (spawned: fresh interpreters that configure themselves from the environment, as
`drip_mcp.http.serve.app_factory` says), starts a new one when one dies, unless it died while
starting (its configuration will not get better), and on SIGTERM or SIGINT stops them all, each
finishing its requests in flight first.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from drip_mcp.errors import ConfigurationError
from drip_mcp.hosts import bind_socket

__all__ = ["serve_workers"]

logger = logging.getLogger("drip_mcp.http.workers")

# uvicorn's exit code for a worker that failed before it served (bad app, TLS or socket).
_STARTUP_FAILURE = 3
# How often the supervisor looks at its workers when none has exited (a signal is seen within this).
_WATCH_S = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with(parent: int) -> None:
    """Linux: end this worker when its supervisor dies (even by SIGKILL), so no orphan keeps the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):  # not Linux: the supervisor's SIGTERM is the only stop
        return
    if os.getppid() != parent:  # the supervisor died before the call above
        raise SystemExit(0)


def _run_worker(common: dict[str, Any], host: str, port: int, parent: int) -> None:
    """One worker process: a socket of its own on the shared port, and uvicorn serving the app on it."""
    import uvicorn

    _die_with(parent)
    sock = bind_socket(host, port, reuse_port=True)
    with sock:
        server = uvicorn.Server(uvicorn.Config("drip_mcp.http.serve:app_factory", factory=True, **common))
        try:
            server.run(sockets=[sock])
        except Exception:
            if server.started:
                raise
            logger.exception("a worker could not start")
    if not server.started:  # the supervisor stops rather than restart it again and again
        raise SystemExit(_STARTUP_FAILURE)


def serve_workers(
    common: dict[str, Any], workers: int, host: str, port: int, *, drain_s: float, ready: Callable[[], None]
) -> None:
    """Run `workers` worker processes on `host`:`port` until SIGTERM or SIGINT (see the module docstring).

    `common` are the `uvicorn.Config` arguments; each worker gets `drain_s` to finish its requests once
    stopped. `ready` is called once the port is held and the workers are starting. Raises
    `ConfigurationError` when the port is in use or a worker fails to start.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("--workers needs SO_REUSEPORT (Linux, macOS, BSD); run one process per port instead")
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = context.Process(target=_run_worker, args=(common, host, port, os.getpid()), name="drip-mcp-worker")
        process.start()
        return process

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # A port in use, by anything (another drip-mcp's workers included: SO_REUSEPORT would let a second one
    # join them silently), is one line and no worker started. Then hold it, for our workers only.
    bind_socket(host, port).close()
    reservation = bind_socket(host, port, reuse_port=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes: list[BaseProcess] = []
    failed = False
    try:
        processes = [start() for _ in range(workers)]
        ready()
        while not stop.is_set():
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=_WATCH_S)
            for index, process in enumerate(processes):
                if process.is_alive() or stop.is_set():
                    continue
                if process.exitcode == _STARTUP_FAILURE:
                    logger.error("worker %s failed to start; stopping", process.pid)
                    failed = True
                    stop.set()
                    break
                logger.warning("worker %s exited (code %s); starting another", process.pid, process.exitcode)
                processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn stops accepting and drains
        for process in processes:
            process.join(drain_s + 5.0)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reservation.close()
    if failed:
        raise ConfigurationError(f"the HTTP workers on {host}:{port} did not start (see above)")
