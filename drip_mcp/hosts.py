"""Host names and listening sockets: is this address on this machine only? Bind a port, or say why not."""

from __future__ import annotations

import errno
import ipaddress
import socket

from drip_mcp.errors import ConfigurationError

__all__ = ["bind_socket", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``, with or without brackets)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: any free port), inheritable by worker processes.

    ``reuse_port`` sets ``SO_REUSEPORT``: sockets of this user that all set it may bind the same port, and
    the kernel spreads new connections over those that listen (one per worker, `drip_mcp.http.workers`).
    A port already in use is a `ConfigurationError` naming it and saying how to pick another.
    """
    name = host.strip().strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP; and set
    # here too, so connections that uvicorn's worker processes accept inherit it (their own bind leaves Nagle
    # on, which delayed every small keep-alive response by the client's delayed ACK, ~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((name, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            shown = f"[{name}]" if ":" in name else name
            raise ConfigurationError(
                f"{shown}:{port} is already in use: choose another --port (or --port 0 for any free port)"
            ) from None
        raise
    sock.set_inheritable(True)
    return sock
