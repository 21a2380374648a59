"""What goes over the wire to Drip and comes back: bodies, ids, keys, parsed replies and errors.

Pure functions used by `drip_mcp.api.client`: camelCase bodies with exact
numbers (`encode_body`), idempotency keys, response parsing into models, and
`error_from_response`, the one factory that turns an HTTP error response into
an `APIStatusError` with the server's text scrubbed of secrets.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel
from pydantic.alias_generators import to_camel as _to_camel

from drip_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PublicKeyNotAllowedError,
    RateLimitError,
    UnprocessableEntityError,
)
from drip_mcp.redaction import scrub_text

__all__ = [
    "MAX_JSON_EXPONENT",
    "encode_body",
    "error_from_response",
    "new_idempotency_key",
    "parse_body",
    "parse_model",
    "query_value",
    "to_camel",
    "to_wire",
]

MAX_JSON_EXPONENT = 30  # no Drip number (quantity, cost, price) is anywhere near 10**30
T = TypeVar("T", bound=BaseModel)


def new_idempotency_key(prefix: str = "drip") -> str:
    """A fresh key: ``<prefix>_<32 hex>``, well under Drip's 128-character limit."""
    return f"{prefix}_{uuid.uuid4().hex}"


@functools.lru_cache(maxsize=512)
def to_camel(name: str) -> str:
    """``customer_id`` -> ``customerId`` (cached: the same few dozen field names on every call)."""
    return _to_camel(name)


def to_wire(fields: Mapping[str, Any]) -> dict[str, Any]:
    """camelCase keys, ``None`` dropped: the body Drip expects."""
    return {to_camel(k): v for k, v in fields.items() if v is not None}


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInputError(f"{value} is not a finite number")
        if value.adjusted() > MAX_JSON_EXPONENT:  # before int(): 1e1000000 would take seconds to expand
            raise InvalidInputError(f"{value} is too large to send")
        as_int = int(value)
        if as_int == value:
            return as_int
        as_float = float(value)
        if Decimal(repr(as_float)) != value:
            raise InvalidInputError(f"{value} has more precision than a JSON number can carry")
        return as_float
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    raise TypeError(f"cannot send {type(value).__name__} to Drip")


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON; Decimals become exact JSON numbers or the call is refused (`InvalidInputError`)."""
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_body(response: httpx2.Response) -> Any:
    """The response's JSON, or (for a non-JSON body) its first 500 characters."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def parse_model(model: type[T], data: Any, endpoint: str) -> T:
    """Validate a response body; a malformed body is a clear error, not a pydantic traceback."""
    try:
        return model.model_validate(data)
    except ValueError as exc:
        raise InvalidResponseError(f"Drip returned an unexpected response to {endpoint}", body=data) from exc


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_from_response(
    status: int,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    idempotency_key: str | None = None,
) -> APIStatusError:
    """Build the error for an HTTP error response (body: parsed JSON or text)."""
    envelope: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    message = envelope.get("message") or envelope.get("error")
    if not isinstance(message, str) or not message:
        message = f"Drip API returned HTTP {status}"
    message = scrub_text(message)
    code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
    raw_details = envelope.get("details")
    details = (
        [
            {k: scrub_text(v) if isinstance(v, str) else v for k, v in d.items()}
            for d in raw_details
            if isinstance(d, Mapping)
        ]
        if isinstance(raw_details, list)
        else None
    )
    if status == 403 and code == "PUBLIC_KEY_NOT_ALLOWED":
        return PermissionDeniedError(
            message,
            status=status,
            code=code,
            hint=PublicKeyNotAllowedError.default_hint,
            request_id=request_id,
            body=body,
            idempotency_key=idempotency_key,
        )
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "details": details,
        "request_id": request_id,
        "body": body,
        "idempotency_key": idempotency_key,
    }
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return InternalServerError(message, retry_after=retry_after, **common)
    return _STATUS_CLASSES.get(status, APIStatusError)(message, **common)
