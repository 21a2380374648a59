"""The public surface of `drip_mcp`: pinned, sorted, importable (as httpx tests its own)."""

from __future__ import annotations

import types

import drip_mcp

EXPECTED_ALL = [
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


def test_all_is_pinned() -> None:
    assert drip_mcp.__all__ == EXPECTED_ALL


def test_all_is_sorted_and_unique() -> None:
    assert drip_mcp.__all__ == sorted(drip_mcp.__all__)
    assert len(set(drip_mcp.__all__)) == len(drip_mcp.__all__)


def test_every_exported_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from drip_mcp import *", namespace)  # noqa: S102 - the star import is the thing under test
    for name in drip_mcp.__all__:
        assert getattr(drip_mcp, name) is not None
        assert namespace[name] is getattr(drip_mcp, name)


def test_all_equals_the_public_names_in_the_package() -> None:
    # Public, non-module attributes of the package (submodules such as ``drip_mcp.client`` are
    # bound as attributes by the imports, and other tests may import more of them).
    public = {
        name
        for name, value in vars(drip_mcp).items()
        if (not name.startswith("_") or name == "__version__") and not isinstance(value, types.ModuleType)
    }
    assert public == set(drip_mcp.__all__)


def test_version_is_a_string() -> None:
    assert isinstance(drip_mcp.__version__, str)
    assert drip_mcp.__version__.count(".") >= 2
