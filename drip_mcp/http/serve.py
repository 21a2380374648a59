"""Run the HTTP app under uvicorn: one process, or ``--workers N`` stateless worker processes.

Scaling out (``--workers N``, which needs ``--stateless``) runs uvicorn with
the import string ``drip_mcp.http.serve:app_factory``; each worker process
rebuilds settings and options from ``DRIP_MCP_HTTP_CONFIG`` (JSON, no secrets),
the key from ``DRIP_API_KEY``, the token from ``DRIP_MCP_AUTH_TOKEN`` and its
log level from ``DRIP_MCP_LOG_LEVEL`` (read by `drip_mcp.settings.WorkerEnvironment`),
which `serve_http` sets before spawning them. See ``docs/deployment.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from drip_mcp._version import __version__
from drip_mcp.errors import ConfigurationError
from drip_mcp.hosts import bind_socket
from drip_mcp.http.app import build_http_app
from drip_mcp.http.options import HttpOptions, host_header_form
from drip_mcp.keys import ApiKey
from drip_mcp.logs import configure_logging
from drip_mcp.server import DripServer, banner
from drip_mcp.settings import (
    AUTH_TOKEN_ENV,
    LOG_LEVEL_ENV,
    STATE_KEY_ENV,
    STATE_URL_ENV,
    WORKER_CONFIG_ENV,
    Settings,
    WorkerEnvironment,
)

__all__ = ["GRACEFUL_SHUTDOWN_S", "app_factory", "serve_http"]

GRACEFUL_SHUTDOWN_S = 10.0


def _startup_line(settings: Settings, options: HttpOptions, server: DripServer, port: int) -> str:
    host = host_header_form(options.host)
    if options.per_request_key:
        target = f"sandbox (db: {settings.sandbox_db})" if settings.sandbox else settings.base_url
        head = f"drip-mcp {__version__}: {options.transport} -> {target}; per-request keys"
    else:
        head = banner(settings, server, options.transport)
    auth = "bearer token required" if options.auth_token else ""
    tail = "; ".join(p for p in (f"listening on http://{host}:{port}{options.mcp_path}", auth) if p)
    return f"{head}; {tail}"


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return {"$path": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$path":
            return Path(inner)
        if tag == "$decimal":
            return Decimal(inner)
        if tag == "$tuple":
            return tuple(_decode(v) for v in inner)
    return value


def _export_config(settings: Settings, options: HttpOptions, environ: MutableMapping[str, str]) -> None:
    """Put what a worker needs into `environ`: JSON without secrets, key and token in their own variables."""
    data = {
        "settings": {f.name: _encode(getattr(settings, f.name)) for f in dataclasses.fields(settings)},
        "options": {f.name: _encode(getattr(options, f.name)) for f in dataclasses.fields(options)},
    }
    data["settings"].pop("api_key")
    data["options"].pop("auth_token")
    _export_state_secrets(settings, data["settings"], environ)
    environ[WORKER_CONFIG_ENV] = json.dumps(data)
    if settings.api_key is not None:
        environ["DRIP_API_KEY"] = settings.api_key.reveal()
    else:
        environ.pop("DRIP_API_KEY", None)
    environ[LOG_LEVEL_ENV] = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    if options.auth_token is not None:
        environ[AUTH_TOKEN_ENV] = options.auth_token
    else:
        environ.pop(AUTH_TOKEN_ENV, None)


def _export_state_secrets(settings: Settings, exported: dict[str, Any], environ: MutableMapping[str, str]) -> None:
    """The state URL (it may carry a password) and the operator key travel in their own variables, not the JSON."""
    exported.pop("state_url", None)
    exported.pop("state_key", None)
    for name, value in ((STATE_URL_ENV, settings.state_url), (STATE_KEY_ENV, settings.state_key)):
        if value:
            environ[name] = value
        else:
            environ.pop(name, None)


def _import_config(worker: WorkerEnvironment) -> tuple[Settings, HttpOptions]:
    data = json.loads(worker.config)
    key = ApiKey(worker.api_key) if worker.api_key else None
    settings = Settings(
        api_key=key,
        state_url=worker.state_url,
        state_key=worker.state_key,
        **{k: _decode(v) for k, v in data["settings"].items()},
    )
    options = HttpOptions(auth_token=worker.auth_token, **{k: _decode(v) for k, v in data["options"].items()})
    return settings, options


def app_factory() -> Starlette:
    """uvicorn ``--factory`` entry for worker processes (``drip_mcp.http.serve:app_factory``).

    Reads ``DRIP_MCP_HTTP_CONFIG``, ``DRIP_API_KEY``, ``DRIP_MCP_AUTH_TOKEN`` and ``DRIP_MCP_LOG_LEVEL``
    (through `WorkerEnvironment`), which `serve_http` sets before spawning the workers.
    """
    worker = WorkerEnvironment.read()
    settings, options = _import_config(worker)
    configure_logging(worker.log_level, secrets=[worker.api_key, worker.auth_token or ""])
    return build_http_app(settings, options)


def _no_op_handler(signum: int, frame: object) -> None:
    """Stands in for SIGTERM's default while uvicorn serves: it re-raises the signal after draining."""


def serve_http(settings: Settings, options: HttpOptions) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get `GRACEFUL_SHUTDOWN_S` to finish.

    Prints one line on stderr once listening (with the real port when ``--port 0``).
    A SIGTERM shutdown returns normally (exit 0); SIGINT ends in KeyboardInterrupt (exit 130).
    """
    import asyncio

    import uvicorn

    options.validate()
    common: dict[str, Any] = {
        "host": options.host.strip("[]"),
        "port": options.port,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "ws": "none",
        "server_header": False,
    }
    if options.workers > 1:
        from drip_mcp.http.workers import serve_workers

        _export_config(settings, options, os.environ)  # the workers' environment: written, read by Settings
        announced = f"http://{host_header_form(options.host)}:{options.port}{options.mcp_path}"
        serve_workers(
            common,
            options.workers,
            common["host"],
            options.port,
            drain_s=GRACEFUL_SHUTDOWN_S,
            ready=lambda: print(
                f"drip-mcp {__version__}: {options.transport} with {options.workers} workers; listening on {announced}",
                file=sys.stderr,
                flush=True,
            ),
        )
        return

    app = build_http_app(settings, options)
    server_obj: DripServer = app.state.drip_server

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.should_exit and self.servers:
                port = self.servers[0].sockets[0].getsockname()[1]
                print(_startup_line(settings, options, server_obj, port), file=sys.stderr, flush=True)

    server = AnnouncingServer(uvicorn.Config(app, **common))
    sock = bind_socket(options.host, options.port)
    previous = signal.signal(signal.SIGTERM, _no_op_handler)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started:
        raise ConfigurationError(f"the HTTP server on {options.host}:{options.port} did not start (see above)")
