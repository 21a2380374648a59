"""Routes for async charges, the usage quota and refunds.

``POST /usage/async`` (any key) takes the ``POST /usage`` body and answers
**202** ``{success, usageEventId, isDuplicate, charge:{id, amountUsdc,
amountToken, status:"PENDING", estimatedConfirmationTime}, message}``; the
charge is priced (contract override, else plan; 404 without either) and
checked against spending caps (403 ``SPENDING_CAP_EXCEEDED``) at once, but the
balance is checked when it settles: the settlement worker
(`drip_mcp.sandbox.settle`) makes it CONFIRMED (``charge.succeeded``) or FAILED
with ``failureReason: "INSUFFICIENT_BALANCE"`` (``charge.failed``). A replay of
the key returns the charge as it is now (``isDuplicate: true``). Async keys are
their own namespace, apart from ``POST /usage`` keys.

``GET /usage/quota`` (any key; schema unpublished, so this is the sandbox's
choice): ``{limit, used, remaining, exceeded, resetAt, overagePerEventUsd,
periodStart}`` where ``used`` counts usage events of every kind (billable,
async, internal) since the start of the current UTC month, ``limit`` is
100,000 events, ``resetAt`` is the next month's start, and
``overagePerEventUsd`` is ``"0.000100"``. The quota is reported, not enforced.

``POST /charges/{id}/refund`` (secret key; body ``{reason, note?}`` with
``reason`` one of ``customer_request``/``merchant_error``/``fraud_reversal``)
credits the amount back exactly and answers the Charge with ``status:
"REFUNDED"``, ``refundReason``, ``refundNote``, ``refundTxHash``,
``refundedAt``; emits ``charge.refunded``. A second refund is 409
``ALREADY_REFUNDED``; a charge that is not CONFIRMED is 409
``CHARGE_NOT_REFUNDABLE``. Secret-only because refunds move money out of the
business (OAS puts charge reads behind a secret key too).
"""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from drip_mcp.sandbox.billing import _charge_info, _charge_view, _usage_request
from drip_mcp.sandbox.store import iso_at
from drip_mcp.sandbox.store.settlement import REFUND_REASONS
from drip_mcp.sandbox.web import Body, endpoint, json_response, services

__all__ = ["MONTHLY_EVENT_QUOTA", "routes"]

MONTHLY_EVENT_QUOTA = 100_000
OVERAGE_PER_EVENT_USD = "0.000100"


@endpoint()
async def charge_async(request: Request, body: Body) -> Response:
    """POST /usage/async: billable usage, settled in the background."""
    customer_id, external_id, usage = _usage_request(body)
    outcome = services(request).store.charge_async(customer_id, external_id, usage)
    charge = outcome.charge
    return json_response(
        {
            "success": True,
            "usageEventId": outcome.usage_event["id"],
            "isDuplicate": outcome.is_duplicate,
            "charge": {**_charge_info(charge), "estimatedConfirmationTime": "1s"},
            "message": "Duplicate request: returning the original charge"
            if outcome.is_duplicate
            else "Charge queued for settlement; subscribe to charge.succeeded / charge.failed for the outcome",
        },
        202,
    )


@endpoint()
async def usage_quota(request: Request, body: Body) -> Response:
    """GET /usage/quota: the business's monthly event quota."""
    store = services(request).store
    now = datetime.fromtimestamp(store.clock(), tz=timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    reset = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    used = store.usage_event_count_since(iso_at(start.timestamp()))
    return json_response(
        {
            "limit": MONTHLY_EVENT_QUOTA,
            "used": used,
            "remaining": max(0, MONTHLY_EVENT_QUOTA - used),
            "exceeded": used > MONTHLY_EVENT_QUOTA,
            "resetAt": iso_at(reset.timestamp()),
            "overagePerEventUsd": OVERAGE_PER_EVENT_USD,
            "periodStart": iso_at(start.timestamp()),
        }
    )


@endpoint()  # refunds are public-key work (DESIGN: keys and scope)
async def refund_charge(request: Request, body: Body) -> Response:
    """POST /charges/{id}/refund."""
    reason = body.required_string("reason", choices=REFUND_REASONS)
    note = body.string("note", max_length=500)
    body.check()
    charge = services(request).store.refund_charge(request.path_params["id"], reason=reason, note=note)
    return json_response(_charge_view(charge))


routes = [
    Route("/usage/async", charge_async, methods=["POST"]),
    Route("/usage/quota", usage_quota, methods=["GET"]),
    Route("/charges/{id}/refund", refund_charge, methods=["POST"]),
]
