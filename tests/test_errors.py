"""`drip_mcp.errors`: the error tree and `error_from_response`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drip_mcp.api.wire import error_from_response
from drip_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DripConnectionError,
    DripError,
    DripTimeoutError,
    InternalServerError,
    InvalidInputError,
    MetadataPolicyError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PublicKeyNotAllowedError,
    RateLimitError,
    SpendCapExceededError,
    UnprocessableEntityError,
)

STATUS_CLASSES = [
    (400, BadRequestError, "BAD_REQUEST", False),
    (401, AuthenticationError, "UNAUTHORIZED", False),
    (402, PaymentRequiredError, "PAYMENT_REQUIRED", False),
    (403, PermissionDeniedError, "FORBIDDEN", False),
    (404, NotFoundError, "NOT_FOUND", False),
    (409, ConflictError, "CONFLICT", False),
    (422, UnprocessableEntityError, "VALIDATION_ERROR", False),
    (429, RateLimitError, "RATE_LIMIT_EXCEEDED", True),
    (500, InternalServerError, "SERVER_ERROR", True),
    (502, InternalServerError, "SERVER_ERROR", True),
    (503, InternalServerError, "SERVER_ERROR", True),
]


@pytest.mark.parametrize(("status", "cls", "default_code", "retryable"), STATUS_CLASSES)
def test_status_maps_to_class_and_carries_envelope(
    status: int, cls: type[APIStatusError], default_code: str, retryable: bool
) -> None:
    body = {
        "error": "ignored when message is present",
        "message": f"boom {status}",
        "code": f"SERVER_CODE_{status}",
        "details": [{"field": "quantity", "message": "must be positive"}, "not-a-mapping"],
    }
    exc = error_from_response(status, body, request_id="req_123", idempotency_key="idem_1")

    assert type(exc) is cls
    assert isinstance(exc, APIStatusError)
    assert isinstance(exc, DripError)
    assert exc.status == status
    assert exc.code == f"SERVER_CODE_{status}"
    assert exc.message == f"boom {status}"
    assert str(exc) == f"boom {status}"
    assert exc.details == [{"field": "quantity", "message": "must be positive"}]
    assert exc.request_id == "req_123"
    assert exc.idempotency_key == "idem_1"
    assert exc.retryable is retryable
    assert exc.body == body


@pytest.mark.parametrize(("status", "cls", "default_code", "retryable"), STATUS_CLASSES)
def test_status_without_code_uses_class_default(
    status: int, cls: type[APIStatusError], default_code: str, retryable: bool
) -> None:
    exc = error_from_response(status, {"error": "plain error text"})

    assert type(exc) is cls
    assert exc.code == default_code
    assert exc.message == "plain error text"
    assert exc.details == []


def test_other_5xx_is_internal_server_error_and_other_4xx_is_generic() -> None:
    assert type(error_from_response(504, None)) is InternalServerError
    assert type(error_from_response(599, None)) is InternalServerError
    generic = error_from_response(418, {"message": "teapot"})
    assert type(generic) is APIStatusError
    assert generic.retryable is False
    assert generic.code == "API_ERROR"


def test_payment_required_exposes_checkout_url_and_payment_request() -> None:
    body = {
        "message": "Insufficient balance",
        "code": "INSUFFICIENT_BALANCE",
        "checkoutUrl": "https://checkout.drippay.dev/s/abc",
        "paymentRequest": {"amount": "0.500000", "recipient": "0xabc"},
    }
    exc = error_from_response(402, body)

    assert isinstance(exc, PaymentRequiredError)
    assert exc.checkout_url == "https://checkout.drippay.dev/s/abc"
    assert exc.payment_request == {"amount": "0.500000", "recipient": "0xabc"}
    assert exc.to_dict()["checkout_url"] == "https://checkout.drippay.dev/s/abc"


def test_payment_required_snake_case_and_x402_forms() -> None:
    exc = error_from_response(402, {"checkout_url": "https://c.example/1", "x402": {"scheme": "exact"}})
    assert isinstance(exc, PaymentRequiredError)
    assert exc.checkout_url == "https://c.example/1"
    assert exc.payment_request == {"scheme": "exact"}


def test_payment_required_without_extras() -> None:
    exc = error_from_response(402, "not json")
    assert isinstance(exc, PaymentRequiredError)
    assert exc.checkout_url is None
    assert exc.payment_request is None
    assert "checkout_url" not in exc.to_dict()


def test_conflict_exposes_existing_id() -> None:
    exc = error_from_response(409, {"message": "Customer exists", "existingCustomerId": "cus_123"})

    assert isinstance(exc, ConflictError)
    assert exc.existing_id == "cus_123"
    assert exc.to_dict()["existing_id"] == "cus_123"


def test_conflict_without_existing_id() -> None:
    exc = error_from_response(409, {"message": "dup"})
    assert isinstance(exc, ConflictError)
    assert exc.existing_id is None
    assert "existing_id" not in exc.to_dict()


def test_rate_limit_carries_retry_after_and_hint() -> None:
    exc = error_from_response(429, {"message": "slow down"}, retry_after=12.0)

    assert isinstance(exc, RateLimitError)
    assert exc.retry_after == 12.0
    assert exc.to_dict()["retry_after"] == 12.0
    assert exc.hint is not None
    assert "12 s" in exc.hint


def test_rate_limit_without_retry_after() -> None:
    exc = error_from_response(429, None)
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after is None
    assert "retry_after" not in exc.to_dict()


def test_to_dict_keys() -> None:
    exc = error_from_response(
        422,
        {"message": "bad", "code": "VALIDATION_ERROR", "details": [{"field": "x"}]},
        request_id="req_9",
        idempotency_key="idem_9",
    )
    out = exc.to_dict()

    assert out == {
        "code": "VALIDATION_ERROR",
        "message": "bad",
        "status": 422,
        "retryable": False,
        "hint": UnprocessableEntityError.default_hint,
        "details": [{"field": "x"}],
        "request_id": "req_9",
        "idempotency_key": "idem_9",
    }


def test_to_dict_minimal_keys() -> None:
    out = error_from_response(404, None).to_dict()
    assert set(out) == {"code", "message", "status", "retryable", "hint"}


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", None, b"\x00", 42, ["x"], {"message": ""}])
def test_non_json_or_empty_body_falls_back_to_generic_message(body: object) -> None:
    exc = error_from_response(502, body)
    assert exc.message == "Drip API returned HTTP 502"
    assert exc.code == "SERVER_ERROR"
    assert exc.details == []


def test_public_key_not_allowed_403_from_server() -> None:
    exc = error_from_response(403, {"message": "no", "code": "PUBLIC_KEY_NOT_ALLOWED"})
    assert isinstance(exc, PermissionDeniedError)
    assert exc.code == "PUBLIC_KEY_NOT_ALLOWED"
    assert exc.hint == PublicKeyNotAllowedError.default_hint


def test_local_error_classes() -> None:
    refused = PublicKeyNotAllowedError("create_webhook")
    assert refused.status == 403
    assert refused.code == "PUBLIC_KEY_NOT_ALLOWED"
    assert "create_webhook" in str(refused)
    assert refused.operation == "create_webhook"

    invalid = MetadataPolicyError("metadata.email is PII")
    assert isinstance(invalid, InvalidInputError)
    assert invalid.status == 422
    assert invalid.code == "METADATA_REJECTED"

    assert DripConnectionError("down").retryable is True
    timeout = DripTimeoutError("slow")
    assert isinstance(timeout, DripConnectionError)
    assert timeout.code == "TIMEOUT"
    assert timeout.retryable is True


def test_spend_cap_extra_fields_are_6_decimal_strings() -> None:
    exc = SpendCapExceededError(
        "cap hit",
        cap="per_charge",
        limit=Decimal("1"),
        requested=Decimal("1.5"),
        remaining=Decimal("0.25"),
    )
    out = exc.to_dict()
    assert out["status"] == 403
    assert out["limit_usdc"] == "1.000000"
    assert out["requested_usdc"] == "1.500000"
    assert out["remaining_usdc"] == "0.250000"
    assert out["cap"] == "per_charge"


def test_repr_is_informative() -> None:
    exc = error_from_response(404, {"message": "no such customer"})
    assert repr(exc) == "NotFoundError(code='NOT_FOUND', status=404, message='no such customer')"
