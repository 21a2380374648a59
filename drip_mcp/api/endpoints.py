"""Every Drip route drip-mcp calls, declared once with the key type it needs.

`ENDPOINTS` is the API contract as data (see ``reference/drip-api.md`` §5):
the client's scope guard, the outbox's route check and the operation catalogue
all read it. Paths are relative to the ``/v1`` base URL, except ``health``
(at the API root).
"""

from __future__ import annotations

from dataclasses import dataclass

from drip_mcp.errors import InvalidInputError
from drip_mcp.keys import KeyType

__all__ = ["ENDPOINTS", "Endpoint", "matches_route", "path_segment"]


@dataclass(frozen=True)
class Endpoint:
    """One Drip route: how to call it and which key type it needs."""

    name: str
    method: str
    path: str
    scope: KeyType = KeyType.PUBLIC
    key_prefix: str = "drip"

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PATCH", "PUT")


def _endpoints(*items: Endpoint) -> dict[str, Endpoint]:
    return {e.name: e for e in items}


_SECRET = KeyType.SECRET
ENDPOINTS: dict[str, Endpoint] = _endpoints(
    Endpoint("health", "GET", "/health"),
    Endpoint("create_customer", "POST", "/customers", key_prefix="cus"),
    Endpoint("list_customers", "GET", "/customers"),
    Endpoint("get_customer", "GET", "/customers/{customer_id}"),
    Endpoint("get_balance", "GET", "/customers/{customer_id}/balance"),
    Endpoint("update_customer", "PATCH", "/customers/{customer_id}", key_prefix="cusupd"),
    Endpoint("provision_customer", "POST", "/customers/{customer_id}/provision", _SECRET, key_prefix="prov"),
    Endpoint("sync_customer_balance", "POST", "/customers/{customer_id}/sync-balance", _SECRET, key_prefix="sync"),
    Endpoint("set_customer_spending_cap", "PUT", "/customers/{customer_id}/spending-cap", key_prefix="cap"),
    Endpoint("get_customer_spending_caps", "GET", "/customers/{customer_id}/spending-caps"),
    Endpoint("remove_customer_spending_cap", "DELETE", "/customers/{customer_id}/spending-caps/{cap_id}"),
    Endpoint("track_usage", "POST", "/usage/internal", key_prefix="track"),
    Endpoint("charge", "POST", "/usage", key_prefix="chg"),
    Endpoint("charge_async", "POST", "/usage/async", key_prefix="chga"),
    Endpoint("list_usage", "GET", "/usage"),
    Endpoint("list_charges", "GET", "/charges"),
    Endpoint("get_charge", "GET", "/charges/{charge_id}"),
    Endpoint("refund_charge", "POST", "/charges/{charge_id}/refund", key_prefix="rfd"),
    Endpoint("list_pricing_plans", "GET", "/pricing-plans"),
    Endpoint("estimate_hypothetical", "POST", "/cost-estimate/hypothetical", key_prefix="est"),
    Endpoint("estimate_from_usage", "POST", "/cost-estimate/from-usage", key_prefix="est"),
    Endpoint("checkout", "POST", "/checkout", key_prefix="co"),
    Endpoint("create_workflow", "POST", "/workflows", key_prefix="wf"),
    Endpoint("list_workflows", "GET", "/workflows"),
    Endpoint("get_workflow", "GET", "/workflows/{workflow_id}"),
    Endpoint("update_workflow", "PATCH", "/workflows/{workflow_id}", key_prefix="wfupd"),
    Endpoint("list_runs", "GET", "/runs"),
    Endpoint("start_run", "POST", "/runs", key_prefix="run"),
    Endpoint("end_run", "PATCH", "/runs/{run_id}", key_prefix="end"),
    Endpoint("get_run", "GET", "/runs/{run_id}"),
    Endpoint("get_run_timeline", "GET", "/runs/{run_id}/timeline"),
    Endpoint("emit_event", "POST", "/run-events", key_prefix="evt"),
    Endpoint("emit_events_batch", "POST", "/run-events/batch", key_prefix="evtb"),
    Endpoint("record_run", "POST", "/runs/record", key_prefix="rec"),
    Endpoint("list_events", "GET", "/events"),
    Endpoint("get_event", "GET", "/events/{event_id}"),
    Endpoint("get_event_trace", "GET", "/events/{event_id}/trace"),
    Endpoint("get_trace", "GET", "/trace/{correlation_id}"),
    Endpoint("create_webhook", "POST", "/webhooks", _SECRET, key_prefix="wh"),
    Endpoint("list_webhooks", "GET", "/webhooks", _SECRET),
    Endpoint("get_webhook", "GET", "/webhooks/{webhook_id}", _SECRET),
    Endpoint("update_webhook", "PATCH", "/webhooks/{webhook_id}", _SECRET, key_prefix="whupd"),
    Endpoint("delete_webhook", "DELETE", "/webhooks/{webhook_id}", _SECRET),
    Endpoint("list_webhook_deliveries", "GET", "/webhooks/{webhook_id}/deliveries", _SECRET),
    Endpoint("get_webhook_delivery", "GET", "/webhooks/{webhook_id}/deliveries/{delivery_id}", _SECRET),
    Endpoint(
        "retry_webhook_delivery",
        "POST",
        "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
        _SECRET,
        key_prefix="whretry",
    ),
    Endpoint("test_webhook", "POST", "/webhooks/{webhook_id}/test", _SECRET, key_prefix="whtest"),
    Endpoint("rotate_webhook_secret", "POST", "/webhooks/{webhook_id}/rotate-secret", _SECRET, key_prefix="whrot"),
    Endpoint("check_entitlement", "POST", "/entitlements/check", key_prefix="entchk"),
    Endpoint("create_entitlement_plan", "POST", "/entitlement-plans", _SECRET, key_prefix="entplan"),
    Endpoint("list_entitlement_plans", "GET", "/entitlement-plans", _SECRET),
    Endpoint("get_entitlement_plan", "GET", "/entitlement-plans/{plan_id}", _SECRET),
    Endpoint("update_entitlement_plan", "PATCH", "/entitlement-plans/{plan_id}", _SECRET, key_prefix="entplan"),
    Endpoint("delete_entitlement_plan", "DELETE", "/entitlement-plans/{plan_id}", _SECRET),
    Endpoint("add_entitlement_rule", "POST", "/entitlement-plans/{plan_id}/rules", _SECRET, key_prefix="entrule"),
    Endpoint("list_entitlement_rules", "GET", "/entitlement-plans/{plan_id}/rules", _SECRET),
    Endpoint("update_entitlement_rule", "PATCH", "/entitlement-rules/{rule_id}", _SECRET, key_prefix="entrule"),
    Endpoint("delete_entitlement_rule", "DELETE", "/entitlement-rules/{rule_id}", _SECRET),
    Endpoint(
        "assign_customer_entitlement", "PUT", "/customers/{customer_id}/entitlement", _SECRET, key_prefix="entasg"
    ),
    Endpoint("get_customer_entitlement", "GET", "/customers/{customer_id}/entitlement", _SECRET),
    Endpoint("create_subscription", "POST", "/subscriptions", key_prefix="sub"),
    Endpoint("list_subscriptions", "GET", "/subscriptions"),
    Endpoint("get_subscription", "GET", "/subscriptions/{subscription_id}"),
    Endpoint("update_subscription", "PATCH", "/subscriptions/{subscription_id}", key_prefix="subupd"),
    Endpoint("cancel_subscription", "POST", "/subscriptions/{subscription_id}/cancel", key_prefix="subcan"),
    Endpoint("pause_subscription", "POST", "/subscriptions/{subscription_id}/pause", key_prefix="subpau"),
    Endpoint("resume_subscription", "POST", "/subscriptions/{subscription_id}/resume", key_prefix="subres"),
    Endpoint("create_contract", "POST", "/contracts", _SECRET, key_prefix="ctr"),
    Endpoint("list_contracts", "GET", "/contracts", _SECRET),
    Endpoint("get_contract", "GET", "/contracts/{contract_id}", _SECRET),
    Endpoint("update_contract", "PATCH", "/contracts/{contract_id}", _SECRET, key_prefix="ctrupd"),
    Endpoint("delete_contract", "DELETE", "/contracts/{contract_id}", _SECRET),
    Endpoint("add_contract_override", "POST", "/contracts/{contract_id}/overrides", _SECRET, key_prefix="ctrovr"),
    Endpoint("remove_contract_override", "DELETE", "/contracts/{contract_id}/overrides/{unit_type}", _SECRET),
)


def path_segment(value: str) -> str:
    """Path parameters are ids: refuse anything that could change the route."""
    if not value or any(c in value for c in "/?#%\\") or value in (".", ".."):
        raise InvalidInputError(f"{value!r} is not a valid id")
    return value


def matches_route(template: str, path: str) -> bool:
    """Whether `path` is `template` with each ``{param}`` filled by one valid id segment."""
    expected, actual = template.split("/"), path.split("/")
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        if want.startswith("{"):
            try:
                path_segment(got)
            except InvalidInputError:
                return False
        elif want != got:
            return False
    return True
