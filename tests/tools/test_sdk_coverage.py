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

# Entitlements, subscriptions and contracts operations are added on another branch, in parallel.
# Expected to be missing here; the integrator deletes this set after merging both.
ADDED_ELSEWHERE = frozenset(
    {
        "check_entitlement",
        "create_entitlement_plan",
        "list_entitlement_plans",
        "get_entitlement_plan",
        "update_entitlement_plan",
        "delete_entitlement_plan",
        "add_entitlement_rule",
        "list_entitlement_rules",
        "update_entitlement_rule",
        "delete_entitlement_rule",
        "assign_customer_entitlement",
        "get_customer_entitlement",
        "create_subscription",
        "list_subscriptions",
        "get_subscription",
        "update_subscription",
        "cancel_subscription",
        "pause_subscription",
        "resume_subscription",
        "create_contract",
        "list_contracts",
        "get_contract",
        "update_contract",
        "delete_contract",
        "add_contract_override",
        "remove_contract_override",
    }
)

SDK_METHODS = sorted(
    name for name, _ in inspect.getmembers(drip.Drip, predicate=inspect.isfunction) if not name.startswith("_")
)
API_METHODS = [name for name in SDK_METHODS if name not in HELPERS]


def operation_for(method: str) -> str:
    return ALIASES.get(method, f"drip_{method}")


def test_the_sdk_is_the_one_the_catalogue_follows() -> None:
    assert version("drip-sdk") == "0.1.2"  # its drip.__version__ still says 0.1.0
    assert len(API_METHODS) == 68  # DESIGN: "the Python SDK 0.1.2's API methods (68)"


@pytest.mark.parametrize("method", [m for m in API_METHODS if m not in ADDED_ELSEWHERE])
def test_every_sdk_api_method_maps_to_an_operation(method: str) -> None:
    name = operation_for(method)
    assert name in TOOLS_BY_NAME, f"SDK method {method!r} has no operation {name!r}"
    assert TOOLS_BY_NAME[name] in OPERATIONS


def test_helpers_aliases_and_methods_added_elsewhere_name_real_sdk_methods() -> None:
    assert set(SDK_METHODS) >= HELPERS | set(ALIASES) | ADDED_ELSEWHERE
    assert not set(ALIASES) & ADDED_ELSEWHERE
    assert {f"drip_{m}" for m in ALIASES}.isdisjoint(TOOLS_BY_NAME)  # an alias is only for a differing name


def test_methods_added_elsewhere_are_not_here_yet() -> None:
    """Fails once the other branch is merged: then delete ADDED_ELSEWHERE (every method must map)."""
    assert not {f"drip_{m}" for m in ADDED_ELSEWHERE} & set(TOOLS_BY_NAME)
