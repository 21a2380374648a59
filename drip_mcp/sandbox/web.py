"""HTTP plumbing shared by every sandbox route: keys, request validation, responses.

`endpoint` turns a handler ``async (request, body) -> Response`` into a
Starlette endpoint that checks the API key, parses the JSON body, and renders
`ApiError` as the Drip error envelope. `Body` and `Query` collect every
validation problem of a request and answer them together as one 422.

Keys: any ``pk_test_``/``sk_test_`` key with at least 8 more characters is
accepted, and all of them address the same sandbox account. Live keys get 401.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from drip_mcp.keys import KEY_FORMAT_HINT, key_format_problem
from drip_mcp.sandbox.errors import ApiError, FieldError
from drip_mcp.sandbox.store import MICROS_PER_USDC

if TYPE_CHECKING:
    from drip_mcp.sandbox.app import Services

__all__ = ["Body", "Query", "endpoint", "error_response", "json_response", "number", "services", "usdc"]

Handler = Callable[[Request, "Body"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

_TEST_KEY = re.compile(r"^(pk|sk)_test_[A-Za-z0-9_\-]{8,}$")
_LIVE_KEY = re.compile(r"^(pk|sk)_live_")
_SIX_PLACES = Decimal(1) / MICROS_PER_USDC


def usdc(amount: Decimal) -> str:
    """A USDC amount as the API's 6-decimal string (``"0.100000"``)."""
    return str(amount.quantize(_SIX_PLACES))


def number(value: Decimal) -> int | float:
    """A quantity as a JSON number: an int when integral."""
    return int(value) if value == value.to_integral_value() else float(value)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return JSONResponse(data, status_code=status, headers=headers)


def error_response(error: ApiError) -> Response:
    """`error` rendered as the Drip error envelope."""
    return json_response(error.body(), error.status, error.headers)


def services(request: Request) -> Services:
    """The sandbox services the app was built with."""
    found: Services = request.app.state.services
    return found


def _authenticate(request: Request, *, secret_only: bool) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "UNAUTHORIZED", "Missing API key: send 'Authorization: Bearer <key>'")
    if _LIVE_KEY.match(key):
        raise ApiError(401, "UNAUTHORIZED", "The Drip sandbox accepts test keys only (pk_test_... or sk_test_...)")
    if not _TEST_KEY.match(key):
        problem = key_format_problem(key) or "expected pk_test_... or sk_test_..."
        if problem == KEY_FORMAT_HINT:
            problem = "expected pk_test_... or sk_test_... followed by at least 8 of A-Z a-z 0-9 _ -"
        raise ApiError(401, "UNAUTHORIZED", f"Invalid API key: {problem}")
    if secret_only and key.startswith("pk_"):
        raise ApiError(
            403,
            "PUBLIC_KEY_NOT_ALLOWED",
            "This operation requires a secret key (sk_test_...); public keys (pk_) are not allowed",
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "VALIDATION_ERROR", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Request body must be a JSON object")
    return data


def endpoint(*, secret_only: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap a handler with key checks, JSON parsing and error rendering."""

    def wrap(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                _authenticate(request, secret_only=secret_only)
                data = await _read_json(request) if request.method in ("POST", "PATCH", "PUT") else {}
                return await handler(request, Body(data))
            except ApiError as error:
                return error_response(error)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


class _Fields:
    """Typed getters over a mapping that record problems instead of raising."""

    def __init__(self, data: dict[str, Any], prefix: str = "", errors: list[FieldError] | None = None) -> None:
        self.data = data
        self.prefix = prefix
        self.errors: list[FieldError] = [] if errors is None else errors

    def fail(self, name: str, message: str) -> None:
        """Record a problem with field `name`."""
        self.errors.append({"path": self.prefix + name, "message": message})

    def check(self) -> None:
        """Raise the 422 ``VALIDATION_ERROR`` if any problem was recorded."""
        if self.errors:
            summary = "; ".join(f"{e['path']}: {e['message']}" for e in self.errors)
            raise ApiError(422, "VALIDATION_ERROR", f"Validation failed: {summary}", details=self.errors)

    def _present(self, name: str) -> Any:
        return self.data.get(name)

    def string(
        self,
        name: str,
        *,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> str | None:
        """An optional string field."""
        value = self._present(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.fail(name, "must be a non-empty string")
        elif max_length is not None and len(value) > max_length:
            self.fail(name, f"must be at most {max_length} characters")
        elif pattern is not None and not pattern.fullmatch(value):
            self.fail(name, f"must match {pattern.pattern}")
        elif choices is not None and value not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}")
        else:
            return value
        return None

    def required_string(self, name: str, **rules: Any) -> str:
        """A required string field ("" when missing or invalid; the problem is recorded)."""
        if self._present(name) is None:
            self.fail(name, "is required")
            return ""
        return self.string(name, **rules) or ""

    def decimal(self, name: str, *, positive: bool = True) -> Decimal | None:
        """An optional finite number (strictly positive when `positive`)."""
        value = self._present(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            self.fail(name, "must be a number")
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            self.fail(name, "must be a number")
            return None
        if not amount.is_finite():
            self.fail(name, "must be a finite number")
        elif positive and amount <= 0:
            self.fail(name, "must be greater than 0")
        else:
            return amount
        return None

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        """An optional integer in [minimum, maximum]."""
        value = self._present(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be an integer")
        elif not minimum <= value <= maximum:
            self.fail(name, f"must be between {minimum} and {maximum}")
        else:
            return value
        return None

    def boolean(self, name: str, default: bool) -> bool:
        """An optional boolean."""
        value = self._present(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(name, "must be a boolean")
            return default
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        """An optional JSON object (e.g. ``metadata``)."""
        value = self._present(name)
        if value is None or isinstance(value, dict):
            return value
        self.fail(name, "must be an object")
        return None

    def strings(self, name: str) -> list[str] | None:
        """An optional non-empty list of non-empty strings."""
        value = self._present(name)
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(name, "must be a non-empty list of strings")
            return None
        return value

    def objects(self, name: str, *, required: bool = False) -> list[Body]:
        """A list of JSON objects, each as a nested `Body` sharing this one's problems."""
        value = self._present(name)
        if value is None:
            if required:
                self.fail(name, "is required")
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(name, "must be a list of objects")
            return []
        return [Body(item, f"{self.prefix}{name}[{index}].", self.errors) for index, item in enumerate(value)]


class Body(_Fields):
    """A request's JSON object, with typed getters that collect validation problems."""


class Query(_Fields):
    """A request's query parameters, with the same getters (values arrive as strings)."""

    def __init__(self, request: Request) -> None:
        super().__init__(dict(request.query_params))

    def int_param(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        """An integer query parameter in [minimum, maximum]."""
        raw = self._present(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail(name, "must be an integer")
            return default
        if not minimum <= value <= maximum:
            self.fail(name, f"must be between {minimum} and {maximum}")
            return default
        return value
