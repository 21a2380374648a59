"""drip-mcp: a Model Context Protocol server for the Drip usage-billing API."""

from drip_mcp._version import __version__
from drip_mcp.api.client import DripClient, Page, Reply
from drip_mcp.api.endpoints import Endpoint
from drip_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConfirmationError,
    ConflictError,
    DripConnectionError,
    DripError,
    DripTimeoutError,
    InternalServerError,
    InvalidInputError,
    MetadataPolicyError,
    NotFoundError,
    OutboxCorruptError,
    PaymentRequiredError,
    PermissionDeniedError,
    PublicKeyNotAllowedError,
    RateLimitError,
    SpendCapExceededError,
    StorageUnavailableError,
    UnprocessableEntityError,
)
from drip_mcp.keys import ApiKey, KeyMode, KeyType
from drip_mcp.settings import Settings

__all__ = [
    "APIStatusError",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConfirmationError",
    "ConflictError",
    "DripClient",
    "DripConnectionError",
    "DripError",
    "DripTimeoutError",
    "Endpoint",
    "InternalServerError",
    "InvalidInputError",
    "KeyMode",
    "KeyType",
    "MetadataPolicyError",
    "NotFoundError",
    "OutboxCorruptError",
    "Page",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PublicKeyNotAllowedError",
    "RateLimitError",
    "Reply",
    "Settings",
    "SpendCapExceededError",
    "StorageUnavailableError",
    "UnprocessableEntityError",
    "__version__",
]
