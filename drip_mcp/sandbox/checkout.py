"""Checkout: ``POST /v1/checkout`` and the local hosted page that completes it.

The session's ``url`` points at ``/checkout/{id}``, an HTML page with a "Pay"
form. Submitting it (``POST /checkout/{id}/pay``) credits the customer's
balance with ``amount / 100`` USDC exactly once, then redirects (303) to
``return_url?session_id=..&customer_id=..&status=completed``. Paying again just
redirects again. Sessions expire after 30 minutes (410 afterwards). Request and
response bodies are snake_case, as the SDKs send and read them.
"""

from __future__ import annotations

import html
import time
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from drip_mcp.sandbox.errors import ApiError
from drip_mcp.sandbox.store import Record, iso_at
from drip_mcp.sandbox.web import Body, endpoint, json_response, services

__all__ = ["SESSION_TTL_S", "api_routes", "page_routes"]

SESSION_TTL_S = 30 * 60
MIN_AMOUNT_CENTS = 500
MAX_AMOUNT_CENTS = 1_000_000


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _amount_usd(session: Record) -> float:
    return float(Decimal(session["amount_cents"]) / 100)


@endpoint()
async def create_checkout(request: Request, body: Body) -> Response:
    """POST /v1/checkout."""
    amount = body.integer("amount", minimum=MIN_AMOUNT_CENTS, maximum=MAX_AMOUNT_CENTS)
    if "amount" not in body.data:
        body.fail("amount", "is required")
    return_url = body.required_string("return_url", max_length=2048)
    cancel_url = body.string("cancel_url", max_length=2048)
    for name, url in (("return_url", return_url), ("cancel_url", cancel_url)):
        if url and not _is_web_url(url):
            body.fail(name, "must be an http(s) URL")
    customer_id = body.string("customer_id")
    external_id = body.string("external_customer_id", max_length=255)
    if customer_id is None and external_id is None:
        body.fail("customer_id", "customer_id or external_customer_id is required")
    metadata = body.mapping("metadata")
    body.check()
    assert amount is not None
    expires_at = time.time() + SESSION_TTL_S
    session = services(request).store.create_checkout(
        customer_id=customer_id,
        external_customer_id=external_id,
        amount_cents=amount,
        return_url=return_url,
        cancel_url=cancel_url,
        metadata=metadata,
        expires_at=expires_at,
    )
    base = services(request).public_base_url(request)
    return json_response(
        {
            "id": session["id"],
            "url": f"{base}/checkout/{session['id']}",
            "expires_at": iso_at(expires_at),
            "amount_usd": _amount_usd(session),
            "customer_id": session["customer_id"],
        },
        201,
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drip sandbox checkout</title></head>
<body>
<h1>Drip sandbox checkout</h1>
<p>Add <strong>${amount:.2f}</strong> to customer <code>{customer}</code>.</p>
<p>Status: <strong>{status}</strong>. This is a local sandbox: no money moves.</p>
<form method="post" action="/checkout/{session}/pay"><button type="submit">Pay ${amount:.2f}</button></form>
{cancel}
</body></html>
"""


def _page_error(error: ApiError) -> Response:
    return HTMLResponse(f"<!doctype html><p>{html.escape(error.message)}</p>", status_code=error.status)


async def checkout_page(request: Request) -> Response:
    """GET /checkout/{id}: the hosted payment page."""
    try:
        session = services(request).store.checkout_session(request.path_params["id"])
    except ApiError as error:
        return _page_error(error)
    expired = session["status"] == "OPEN" and session["expires_at"] < time.time()
    cancel = ""
    if session["cancel_url"]:
        cancel = f'<p><a href="{html.escape(session["cancel_url"])}">Cancel</a></p>'
    page = _PAGE.format(
        amount=_amount_usd(session),
        customer=html.escape(session["customer_id"]),
        status="EXPIRED" if expired else session["status"],
        session=html.escape(session["id"]),
        cancel=cancel,
    )
    return HTMLResponse(page, status_code=410 if expired else 200)


async def pay(request: Request) -> Response:
    """POST /checkout/{id}/pay: complete the session, then redirect to its return URL."""
    try:
        session = services(request).store.complete_checkout(request.path_params["id"], time.time())
    except ApiError as error:
        return _page_error(error)
    params = urlencode({"session_id": session["id"], "customer_id": session["customer_id"], "status": "completed"})
    separator = "&" if urlsplit(session["return_url"]).query else "?"
    return RedirectResponse(f"{session['return_url']}{separator}{params}", status_code=303)


api_routes = [Route("/checkout", create_checkout, methods=["POST"])]
page_routes = [
    Route("/checkout/{id}", checkout_page, methods=["GET"]),
    Route("/checkout/{id}/pay", pay, methods=["POST"]),
]
