"""The sandbox's error type and the Drip error envelope it renders to."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "FieldError", "not_found"]

FieldError = dict[str, str]


class ApiError(Exception):
    """An error answered as ``{"error": message, "code": code, "details"?: [...], **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return body


def not_found(kind: str, identifier: str) -> ApiError:
    """A 404 ``NOT_FOUND`` for the `kind` resource `identifier`."""
    return ApiError(404, "NOT_FOUND", f"{kind} not found: {identifier}")
