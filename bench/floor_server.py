"""The SDK floor: the least an `MCPServer` needs to do what ``drip_track_usage`` does.

One tool, ``drip_track_usage(customer_id, meter, quantity)``, that POSTs the
same request as drip-mcp (``POST {DRIP_API_URL}/usage/internal`` with JSON
``{customerId, usageType, quantity, idempotencyKey}`` and a bearer key) through
one shared ``httpx2.AsyncClient`` and returns a pydantic model (structured
output). No validation beyond the signature, no retries, no redaction: the
benchmark compares drip-mcp against this.

    DRIP_API_KEY=pk_test_... DRIP_API_URL=http://127.0.0.1:PORT/v1 python bench/floor_server.py
    ... python bench/floor_server.py --http PORT   # streamable HTTP on 127.0.0.1:PORT/mcp

Over stdio by default (``bench/run.py``). With ``--http PORT`` it serves the same
tool over streamable HTTP, stateless with JSON responses (``MCPServer.run`` with
``stateless_http=True, json_response=True``, the SDK's own uvicorn), the HTTP
floor of ``bench/fleet.py``.
"""

from __future__ import annotations

import argparse
import os
import uuid

import httpx2
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

BASE_URL = os.environ.get("DRIP_API_URL", "http://127.0.0.1:8787/v1").rstrip("/")
HEADERS = {
    "Authorization": f"Bearer {os.environ.get('DRIP_API_KEY', 'pk_test_floor')}",
    "Content-Type": "application/json",
}

mcp = MCPServer("drip-floor", version="0.0.0", log_level="WARNING")
_http: httpx2.AsyncClient | None = None


class TrackUsageOutput(BaseModel):
    status: str
    usage_event_id: str
    customer_id: str
    meter: str
    quantity: float
    idempotency_key: str
    is_duplicate: bool = False


@mcp.tool()
async def drip_track_usage(customer_id: str, meter: str, quantity: float) -> TrackUsageOutput:
    """Record usage for a customer on Drip's ledger (POST /usage/internal)."""
    global _http
    if _http is None:
        _http = httpx2.AsyncClient(timeout=30.0)
    key = f"track_{uuid.uuid4().hex}"
    response = await _http.post(
        f"{BASE_URL}/usage/internal",
        json={"customerId": customer_id, "usageType": meter, "quantity": quantity, "idempotencyKey": key},
        headers=HEADERS,
    )
    response.raise_for_status()
    data = response.json()
    return TrackUsageOutput(
        status="recorded",
        usage_event_id=data["usageEventId"],
        customer_id=data["customerId"],
        meter=data["usageType"],
        quantity=data["quantity"],
        idempotency_key=key,
        is_duplicate=data.get("isDuplicate", False),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The SDK floor for the drip-mcp benchmarks.")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT/mcp")
    port = parser.parse_args().http
    if port is None:
        mcp.run("stdio")
    else:
        mcp.run("streamable-http", host="127.0.0.1", port=port, stateless_http=True, json_response=True)
