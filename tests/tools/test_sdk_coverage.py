"""Every API method of the published Python SDK (0.1.2) maps to an operation: ``drip_<method>`` or a named alias.

DESIGN "Operations and surfaces": an agent that knows the SDK knows the tools. A new SDK method with no
operation (or a renamed operation) fails here.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import drip
import pytest

from drip_mcp.tools import OPERATIONS, TOOLS_BY_NAME

# Client helpers, not API operations.
HELPERS = frozenset({"close", "get_metrics", "get_health", "generate_idempotency_key", "verify_webhook_signature"})

# SDK methods whose operation has another name.
ALIASES = {
    "estimate_from_hypothetical": "drip_estimate_cost",
    # A context manager that starts a run, records its events and ends it: one drip_record_run call.
    "run": "drip_record_run",
    # Calls the caller's function, then charges for the usage it reports: the charge is drip_charge.
    "wrap_api_call": "drip_charge",
    # Buffers quantities client-side and flushes them as usage: drip_track_usage_batch.
    "create_stream_meter": "drip_track_usage_batch",
}

SDK_METHODS = sorted(
    name for name, _ in inspect.getmembers(drip.Drip, predicate=inspect.isfunction) if not name.startswith("_")
)
API_METHODS = [name for name in SDK_METHODS if name not in HELPERS]


def operation_for(method: str) -> str:
    return ALIASES.get(method, f"drip_{method}")


def test_the_sdk_is_the_one_the_catalogue_follows() -> None:
    assert version("drip-sdk") == "0.1.2"  # its drip.__version__ still says 0.1.0
    assert len(API_METHODS) == 68  # DESIGN: "the Python SDK 0.1.2's API methods (68)"


@pytest.mark.parametrize("method", API_METHODS)
def test_every_sdk_api_method_maps_to_an_operation(method: str) -> None:
    name = operation_for(method)
    assert name in TOOLS_BY_NAME, f"SDK method {method!r} has no operation {name!r}"
    assert TOOLS_BY_NAME[name] in OPERATIONS


def test_helpers_and_aliases_name_real_sdk_methods() -> None:
    assert set(SDK_METHODS) >= HELPERS | set(ALIASES)
    assert {f"drip_{m}" for m in ALIASES}.isdisjoint(TOOLS_BY_NAME)  # an alias is only for a differing name
