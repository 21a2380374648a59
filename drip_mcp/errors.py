"""Every error drip-mcp raises or returns, in one tree.

```
DripError                        code, message, status, retryable, hint
├── ConfigurationError           bad or missing settings; the CLI exits 2
│   └── OutboxCorruptError       OUTBOX_CORRUPT: the outbox file is damaged (names it; see `outbox salvage`)
├── StorageUnavailableError      STORAGE_UNAVAILABLE: a durable write could not be stored (disk full,
│                                read-only, I/O error); retryable, carries the idempotency key
├── PublicKeyNotAllowedError     403 PUBLIC_KEY_NOT_ALLOWED, raised before any request
├── InvalidInputError            422 VALIDATION_ERROR from our own checks (names the field)
│   └── MetadataPolicyError      422 METADATA_REJECTED: PII or secrets in metadata
├── SpendCapExceededError        SPEND_CAP_EXCEEDED: a cap refused the charge
├── ConfirmationError            CONFIRMATION_REQUIRED / _DECLINED / _INVALID
├── DripConnectionError          NETWORK_ERROR: no answer from Drip
│   └── DripTimeoutError         TIMEOUT
├── InvalidResponseError         INVALID_RESPONSE: a 2xx body we could not read
└── APIStatusError               Drip answered with an HTTP error
    ├── BadRequestError          400
    ├── AuthenticationError      401
    ├── PaymentRequiredError     402 (payment request, checkout URL)
    ├── PermissionDeniedError    403
    ├── NotFoundError            404
    ├── ConflictError            409 (existing id)
    ├── UnprocessableEntityError 422 (per-field details)
    ├── RateLimitError           429 (retry_after)
    └── InternalServerError      5xx (retry_after)
```

`str(exc)` is written for the agent that reads it: what failed and what to do
next. `to_dict()` is the structured form returned in ``isError`` tool results.
Nothing here ever holds the API key; `drip_mcp.api.wire.error_from_response`
builds the `APIStatusError` for a response at the HTTP boundary, where server
text is scrubbed of secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConfirmationError",
    "ConflictError",
    "DripConnectionError",
    "DripError",
    "DripTimeoutError",
    "InternalServerError",
    "InvalidInputError",
    "InvalidResponseError",
    "MetadataPolicyError",
    "NotFoundError",
    "OutboxCorruptError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PublicKeyNotAllowedError",
    "RateLimitError",
    "SpendCapExceededError",
    "StorageUnavailableError",
    "UnprocessableEntityError",
]


class DripError(Exception):
    """Base class: anything drip-mcp reports as a failure."""

    default_code: ClassVar[str] = "DRIP_ERROR"
    default_hint: ClassVar[str | None] = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        hint: str | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
        request_id: str | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.hint = hint if hint is not None else self.default_hint
        self.details: list[dict[str, Any]] = [dict(d) for d in details or ()]
        self.request_id = request_id
        self.body = body
        self.idempotency_key = idempotency_key

    def to_dict(self) -> dict[str, Any]:
        """The structured error an agent receives: stable keys, no secrets."""
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "retryable": self.retryable,
            "hint": self.hint,
        }
        if self.details:
            out["details"] = self.details
        if self.idempotency_key is not None:
            out["idempotency_key"] = self.idempotency_key
        if self.request_id is not None:
            out["request_id"] = self.request_id
        out.update(self.extra())
        return out

    def extra(self) -> dict[str, Any]:
        """Subclass-specific structured fields (overridden where useful)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class ConfigurationError(DripError):
    """Settings are missing or malformed (for example DRIP_API_KEY)."""

    default_code = "CONFIGURATION_ERROR"


class OutboxCorruptError(ConfigurationError):
    """The outbox file is damaged (fails ``PRAGMA quick_check``) or was emptied after rows were recorded."""

    default_code = "OUTBOX_CORRUPT"

    def __init__(self, path: str, problem: str, **kwargs: Any) -> None:
        kwargs.setdefault(
            "hint", f"Stop drip-mcp and run `drip-mcp outbox salvage --outbox {path}` to keep the readable rows."
        )
        super().__init__(
            f"the outbox {path} is damaged ({problem}); nothing was changed. "
            f"Run `drip-mcp outbox salvage --outbox {path}` to copy its readable rows to a fresh file.",
            **kwargs,
        )
        self.path = path
        self.problem = problem

    def extra(self) -> dict[str, Any]:
        return {"path": self.path}


class StorageUnavailableError(DripError):
    """A durable write could not be stored locally (disk full, read-only, I/O error): nothing was sent."""

    default_code = "STORAGE_UNAVAILABLE"
    default_hint = (
        "Nothing was recorded or sent. Retry later with the same idempotency_key; "
        "the operator must free disk space or fix the outbox file."
    )
    retryable = True

    def __init__(self, message: str, *, reason: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason

    def extra(self) -> dict[str, Any]:
        return {"reason": self.reason} if self.reason else {}


class PublicKeyNotAllowedError(DripError):
    """A public (pk_) key asked for secret-only work; refused before any request."""

    default_code = "PUBLIC_KEY_NOT_ALLOWED"
    default_hint = "Configure drip-mcp with a secret key (sk_live_... or sk_test_...) to use this tool."

    def __init__(self, operation: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", 403)
        super().__init__(
            f"{operation} requires a secret key (sk_...); this server holds a public key (pk_...).", **kwargs
        )
        self.operation = operation


class InvalidInputError(DripError):
    """Arguments failed our own validation before anything was sent."""

    default_code = "VALIDATION_ERROR"
    default_hint = "Fix the named field(s) and call again; nothing was sent."

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", 422)
        super().__init__(message, **kwargs)


class MetadataPolicyError(InvalidInputError):
    """Metadata carried PII, secrets or too much data (strict policy or hard limits)."""

    default_code = "METADATA_REJECTED"
    default_hint = (
        "Metadata must carry operational context only (model, tool, status, latency, counts): "
        "remove the named fields and call again; nothing was sent."
    )


class SpendCapExceededError(DripError):
    """An operator spend cap refused the charge; nothing was sent."""

    default_code = "SPEND_CAP_EXCEEDED"
    default_hint = "Ask the operator to raise the cap, or charge a smaller quantity."

    def __init__(
        self, message: str, *, cap: str, limit: Decimal, requested: Decimal, remaining: Decimal, **kw: Any
    ) -> None:
        kw.setdefault("status", 403)
        super().__init__(message, **kw)
        self.cap = cap
        self.limit = limit
        self.requested = requested
        self.remaining = remaining

    def extra(self) -> dict[str, Any]:
        return {
            "cap": self.cap,
            "limit_usdc": f"{self.limit:.6f}",
            "requested_usdc": f"{self.requested:.6f}",
            "remaining_usdc": f"{self.remaining:.6f}",
        }


class ConfirmationError(DripError):
    """A charge needed confirmation that was declined, missing, expired or invalid."""

    default_code = "CONFIRMATION_INVALID"


class DripConnectionError(DripError):
    """Drip could not be reached (DNS, refused, reset); safe to retry with the same idempotency key."""

    default_code = "NETWORK_ERROR"
    default_hint = "Retry later with the same idempotency_key; the request may or may not have arrived."
    retryable = True


class DripTimeoutError(DripConnectionError):
    """Drip did not answer in time."""

    default_code = "TIMEOUT"


class InvalidResponseError(DripError):
    """Drip answered 2xx with a body that is not the documented shape.

    On a write the request reached Drip and may have been applied: `DripClient` marks it
    retryable with a hint to retry with the same idempotency key (a replay returns the original).
    """

    default_code = "INVALID_RESPONSE"


def _retry_hint(retry_after: float | None) -> str:
    """``Wait 30 s (until 2026-05-01T12:00:30Z), then retry with the same idempotency_key.``"""
    if retry_after is None:
        return "Wait a few seconds, then retry with the same idempotency_key."
    until = datetime.now(timezone.utc) + timedelta(seconds=min(retry_after, 10**9))
    return f"Wait {retry_after:g} s (until {until:%Y-%m-%dT%H:%M:%SZ}), then retry with the same idempotency_key."


class APIStatusError(DripError):
    """Drip answered with an HTTP error status."""

    default_code = "API_ERROR"

    def __init__(self, message: str, *, status: int, **kwargs: Any) -> None:
        super().__init__(message, status=status, **kwargs)


class BadRequestError(APIStatusError):
    """400: the request was malformed."""

    default_code = "BAD_REQUEST"
    default_hint = "Check the arguments against the tool's input schema."


class AuthenticationError(APIStatusError):
    """401: the API key was missing, malformed, revoked or of the wrong mode."""

    default_code = "UNAUTHORIZED"
    default_hint = "Check DRIP_API_KEY (and that test keys go to a test or sandbox API)."


class PaymentRequiredError(APIStatusError):
    """402: the customer's balance does not cover the charge."""

    default_code = "PAYMENT_REQUIRED"
    default_hint = "Top up the customer's balance (drip_checkout) and retry with the same idempotency_key."

    @property
    def checkout_url(self) -> str | None:
        body = self.body if isinstance(self.body, Mapping) else {}
        url = body.get("checkout_url") or body.get("checkoutUrl")
        return url if isinstance(url, str) else None

    @property
    def payment_request(self) -> dict[str, Any] | None:
        body = self.body if isinstance(self.body, Mapping) else {}
        for key in ("payment", "paymentRequest", "x402"):
            if isinstance(found := body.get(key), Mapping):
                return dict(found)
        return None

    def extra(self) -> dict[str, Any]:
        return {"checkout_url": self.checkout_url} if self.checkout_url else {}


class PermissionDeniedError(APIStatusError):
    """403: the key is not allowed to do this."""

    default_code = "FORBIDDEN"
    default_hint = "Use a secret key (sk_...) with the required role, or ask the account admin."


class NotFoundError(APIStatusError):
    """404: the customer, run, charge, webhook or pricing plan does not exist."""

    default_code = "NOT_FOUND"
    default_hint = "Check the id (drip_list_customers, drip_list_meters, ...) and call again."


class ConflictError(APIStatusError):
    """409: it already exists (duplicate customer, slug or external run id)."""

    default_code = "CONFLICT"

    @property
    def existing_id(self) -> str | None:
        body = self.body if isinstance(self.body, Mapping) else {}
        for key in ("existingCustomerId", "existingRunId", "existingPlanId", "existingId"):
            if isinstance(found := body.get(key), str):
                return found
        return None

    def extra(self) -> dict[str, Any]:
        return {"existing_id": self.existing_id} if self.existing_id else {}


class UnprocessableEntityError(APIStatusError):
    """422: a field failed Drip's validation; `details` names it."""

    default_code = "VALIDATION_ERROR"
    default_hint = "Fix the fields named in details and call again."


class RateLimitError(APIStatusError):
    """429: too many requests; wait `retry_after` seconds."""

    default_code = "RATE_LIMIT_EXCEEDED"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if self.hint is None:
            self.hint = _retry_hint(retry_after)

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after} if self.retry_after is not None else {}


class InternalServerError(APIStatusError):
    """5xx: Drip failed; safe to retry with the same idempotency key (after `retry_after` s when given)."""

    default_code = "SERVER_ERROR"
    default_hint = "Retry later with the same idempotency_key."
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        if retry_after is not None and kwargs.get("hint") is None:
            kwargs["hint"] = _retry_hint(retry_after)
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after} if self.retry_after is not None else {}
