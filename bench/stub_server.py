"""A tiny stub of the Drip API for the benchmark: raw asyncio HTTP/1.1 on loopback.

It answers only what the benchmark sends, as cheaply as possible and the same
way for every contestant (drip-mcp, the SDK floor, the direct POST):

* ``POST /v1/usage/internal`` -> 201 ``{success, usageEventId, customerId,
  usageType, quantity, isInternal, isDuplicate, message}`` (echoing the body);
* ``POST /v1/usage`` (a charge) -> 201 ``{success, usageEventId, isDuplicate,
  charge: {id, amountUsdc, amountToken, txHash, status}}``, priced at
  ``UNIT_PRICE_USD`` per unit (``bench/fleet.py``);
* ``GET /v1/pricing-plans`` -> one active FLAT plan per meter in ``METERS``
  (drip-mcp prices a charge with it when a budget or cap is set);
* ``GET /v1/customers`` -> an empty page (the authenticated read with which
  drip-mcp checks a per-request key before it opens a stateful session);
* ``GET /health`` and ``GET /v1/health`` -> 200 ``{"status": "ok"}``;
* ``GET /stats`` -> 200 ``{"requests": N, "usage": N, "charges": N, "unknown": N}`` (for sanity checks;
  ``unknown`` counts 404s, each also printed on stderr);
* anything else -> 404.

Keep-alive, ``Content-Length`` bodies only (no chunked requests: httpx2 sends
``Content-Length`` for ``content=``/``json=``). It prints ``listening PORT`` on
stdout once bound, then serves until killed.

    python bench/stub_server.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys

_IDS = itertools.count(1)
_STATS = {"requests": 0, "usage": 0, "charges": 0, "unknown": 0}
UNIT_PRICE_USD = "0.000001"
METERS = ("api_calls", "tokens")
_PLANS = json.dumps(
    {
        "data": [
            {
                "id": f"pp_{meter}",
                "businessId": "biz_bench",
                "name": meter,
                "unitType": meter,
                "unitPriceUsd": UNIT_PRICE_USD,
                "currency": "USD",
                "pricingModel": "FLAT",
                "isActive": True,
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
            }
            for meter in METERS
        ],
        "count": len(METERS),
    },
    separators=(",", ":"),
).encode()
_CUSTOMERS = b'{"data":[],"count":0}'
_REASONS = {200: b"OK", 201: b"Created", 400: b"Bad Request", 404: b"Not Found"}
_HEALTH = b'{"status":"ok","timestamp":0}'


def _response(status: int, body: bytes, keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _REASONS[status],
        len(body),
        b"" if keep_alive else b"connection: close\r\n",
    )
    return head + body


def _usage(body: bytes) -> tuple[int, bytes]:
    try:
        req = json.loads(body)
        reply = {
            "success": True,
            "usageEventId": f"ue_{next(_IDS)}",
            "customerId": req["customerId"],
            "usageType": req["usageType"],
            "quantity": req["quantity"],
            "isInternal": True,
            "isDuplicate": False,
            "message": "Usage recorded",
        }
    except (ValueError, KeyError, TypeError):
        return 400, b'{"error":"bad request","code":"VALIDATION_ERROR"}'
    _STATS["usage"] += 1
    return 201, json.dumps(reply, separators=(",", ":")).encode()


def _charge(body: bytes) -> tuple[int, bytes]:
    try:
        req = json.loads(body)
        if not isinstance(req["customerId"], str) or not isinstance(req["usageType"], str):
            raise TypeError("customerId and usageType must be strings")
        quantity = float(req["quantity"])
        reply = {
            "success": True,
            "usageEventId": f"ue_{next(_IDS)}",
            "isDuplicate": False,
            "charge": {
                "id": f"ch_{next(_IDS)}",
                "amountUsdc": f"{quantity * float(UNIT_PRICE_USD):.6f}",
                "amountToken": "0",
                "txHash": None,
                "status": "CONFIRMED",
            },
        }
    except (ValueError, KeyError, TypeError):
        return 400, b'{"error":"bad request","code":"VALIDATION_ERROR"}'
    _STATS["charges"] += 1
    return 201, json.dumps(reply, separators=(",", ":")).encode()


class StubProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            length = 0
            keep_alive = True
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    keep_alive = False
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            _STATS["requests"] += 1
            path = target.partition("?")[0]
            if method == "POST" and path == "/v1/usage/internal":
                status, payload = _usage(body)
            elif method == "POST" and path == "/v1/usage":
                status, payload = _charge(body)
            elif method == "GET" and path == "/v1/pricing-plans":
                status, payload = 200, _PLANS
            elif method == "GET" and path == "/v1/customers":
                status, payload = 200, _CUSTOMERS
            elif method == "GET" and target in ("/health", "/v1/health"):
                status, payload = 200, _HEALTH
            elif method == "GET" and target == "/stats":
                status, payload = 200, json.dumps(_STATS).encode()
            else:
                _STATS["unknown"] += 1
                sys.stderr.write(f"stub: 404 {method} {target}\n")
                status, payload = 404, b'{"error":"not found","code":"NOT_FOUND"}'
            assert self.transport is not None
            self.transport.write(_response(status, payload, keep_alive))
            if not keep_alive:
                self.transport.close()
                return


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubProtocol, "127.0.0.1", port, backlog=256)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"listening {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Stub Drip API for the benchmark (loopback only).")
    parser.add_argument("--port", type=int, default=0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
