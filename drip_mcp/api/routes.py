"""The typed Drip routes: one method per call drip-mcp makes with its own request and reply models.

`DripRoutes` holds them; `drip_mcp.api.client.DripClient` inherits them and supplies the one
request path (`DripRoutes._call`: scope guard, idempotency key, retries, error translation,
the durable outbox). Pass-through operations need no method here: they use
`DripClient.request` with the route's name in `drip_mcp.api.endpoints`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from drip_mcp.api import models as m
from drip_mcp.api.endpoints import Endpoint
from drip_mcp.api.wire import parse_model, to_wire

__all__ = ["DripRoutes", "Page", "Reply"]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


@dataclass(frozen=True)
class Reply(Generic[T]):
    """A mutating call's parsed result and the idempotency key it was sent with."""

    data: T
    idempotency_key: str


class Page(BaseModel, Generic[T]):
    """Drip's list envelope ``{data, count}``."""

    data: list[T]
    count: int


class DripRoutes(ABC):
    """The typed calls; `_call` and `request` are the client's request path."""

    @abstractmethod
    async def _call(
        self,
        endpoint: Endpoint | str,
        parse: Callable[[Any], R],
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> tuple[R, str | None]: ...

    @abstractmethod
    async def request(
        self,
        endpoint: Endpoint | str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> tuple[Any, str | None]: ...

    async def _get(self, endpoint: str, model: type[T], **kw: Any) -> T:
        return (await self._call(endpoint, _parser(model, endpoint), **kw))[0]

    async def _page(self, endpoint: str, model: type[T], params: Mapping[str, Any]) -> Page[T]:
        page: type[Page[T]] = Page[model]  # type: ignore[valid-type]
        return (await self._call(endpoint, _parser(page, endpoint), params=params))[0]

    async def _post(
        self,
        endpoint: str,
        model: type[T],
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        path_params: Mapping[str, str] | None = None,
        durable: bool = False,
    ) -> Reply[T]:
        data, key = await self._call(
            endpoint,
            _parser(model, endpoint),
            body=body,
            idempotency_key=idempotency_key,
            path_params=path_params,
            durable=durable,
        )
        assert key is not None
        return Reply(data, key)

    # --- status -------------------------------------------------------------------------------

    async def health(self) -> m.Health:
        """``GET /health`` at the API root."""
        return await self._get("health", m.Health)

    # --- customers ----------------------------------------------------------------------------

    async def create_customer(
        self,
        *,
        external_customer_id: str | None = None,
        onchain_address: str | None = None,
        email: str | None = None,
        is_internal: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.Customer]:
        body = to_wire(
            {
                "external_customer_id": external_customer_id,
                "onchain_address": onchain_address,
                "email": email,
                "is_internal": is_internal,
                "metadata": metadata,
            }
        )
        return await self._post("create_customer", m.Customer, body, idempotency_key)

    async def get_customer(self, customer_id: str) -> m.Customer:
        return await self._get("get_customer", m.Customer, path_params={"customer_id": customer_id})

    async def list_customers(
        self, *, limit: int | None = None, offset: int | None = None, status: str | None = None
    ) -> Page[m.Customer]:
        return await self._page("list_customers", m.Customer, {"limit": limit, "offset": offset, "status": status})

    async def get_balance(self, customer_id: str) -> m.Balance:
        return await self._get("get_balance", m.Balance, path_params={"customer_id": customer_id})

    # --- usage, charges, meters, estimates, checkout -----------------------------------------

    async def track_usage(
        self,
        *,
        customer_id: str | None,
        meter: str,
        quantity: Decimal,
        units: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
        external_customer_id: str | None = None,
    ) -> Reply[m.TrackUsageResult]:
        """Record usage on the ledger without billing (``POST /usage/internal``).

        ``durable=True``: through the client's outbox; raises `Queued` when stored for later delivery.
        """
        body = to_wire(
            {
                "customer_id": customer_id,
                "external_customer_id": external_customer_id,
                "usage_type": meter,
                "quantity": quantity,
                "units": units,
                "description": description,
                "metadata": metadata,
            }
        )
        return await self._post("track_usage", m.TrackUsageResult, body, idempotency_key, durable=durable)

    async def charge(
        self,
        *,
        customer_id: str,
        meter: str,
        quantity: Decimal,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.ChargeResult]:
        """Bill usage against the customer's balance (``POST /usage``). Moves money."""
        body = to_wire({"customer_id": customer_id, "usage_type": meter, "quantity": quantity, "metadata": metadata})
        return await self._post("charge", m.ChargeResult, body, idempotency_key)

    async def charge_async(
        self,
        *,
        customer_id: str,
        meter: str,
        quantity: Decimal,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.ChargeAsyncResult]:
        """Bill usage, settled in the background (``POST /usage/async``, 202; the charge is PENDING). Moves money."""
        body = to_wire({"customer_id": customer_id, "usage_type": meter, "quantity": quantity, "metadata": metadata})
        return await self._post("charge_async", m.ChargeAsyncResult, body, idempotency_key)

    async def list_charges(
        self,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Page[m.Charge]:
        params = {"customer_id": customer_id, "status": status, "limit": limit, "offset": offset}
        return await self._page("list_charges", m.Charge, params)

    async def get_charge(self, charge_id: str) -> m.Charge:
        return await self._get("get_charge", m.Charge, path_params={"charge_id": charge_id})

    async def list_pricing_plans(self) -> Page[m.PricingPlan]:
        return await self._page("list_pricing_plans", m.PricingPlan, {})

    async def estimate_hypothetical(
        self,
        *,
        items: Sequence[Mapping[str, Any]],
        default_unit_price: str | None = None,
        custom_pricing: Mapping[str, str] | None = None,
    ) -> m.CostEstimate:
        body = to_wire(
            {
                "items": [to_wire(i) for i in items],
                "default_unit_price": default_unit_price,
                "custom_pricing": custom_pricing,
            }
        )
        return (await self._post("estimate_hypothetical", m.CostEstimate, body)).data

    async def estimate_from_usage(
        self,
        *,
        period_start: str,
        period_end: str,
        customer_id: str | None = None,
        usage_types: list[str] | None = None,
        default_unit_price: str | None = None,
        include_charged_events: bool | None = None,
        custom_pricing: Mapping[str, str] | None = None,
    ) -> m.CostEstimate:
        body = to_wire(
            {
                "period_start": period_start,
                "period_end": period_end,
                "customer_id": customer_id,
                "usage_types": usage_types,
                "default_unit_price": default_unit_price,
                "include_charged_events": include_charged_events,
                "custom_pricing": custom_pricing,
            }
        )
        return (await self._post("estimate_from_usage", m.CostEstimate, body)).data

    async def checkout(
        self,
        *,
        amount_cents: int,
        return_url: str,
        customer_id: str | None = None,
        external_customer_id: str | None = None,
        cancel_url: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.Checkout]:
        """Create a hosted top-up session. The body is snake_case, as Drip's SDKs send it."""
        fields = {
            "amount": amount_cents,
            "return_url": return_url,
            "customer_id": customer_id,
            "external_customer_id": external_customer_id,
            "cancel_url": cancel_url,
            "metadata": metadata,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return await self._post("checkout", m.Checkout, body, idempotency_key)

    # --- workflows, runs, events --------------------------------------------------------------

    async def create_workflow(
        self,
        *,
        name: str,
        slug: str,
        product_surface: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.Workflow]:
        body = to_wire({"name": name, "slug": slug, "product_surface": product_surface, "description": description})
        return await self._post("create_workflow", m.Workflow, body, idempotency_key)

    async def list_workflows(self, *, limit: int | None = None) -> Page[m.Workflow]:
        return await self._page("list_workflows", m.Workflow, {"limit": limit})

    async def start_run(
        self,
        *,
        customer_id: str,
        workflow_id: str,
        external_run_id: str | None = None,
        correlation_id: str | None = None,
        parent_run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.RunResult]:
        body = to_wire(
            {
                "customer_id": customer_id,
                "workflow_id": workflow_id,
                "external_run_id": external_run_id,
                "correlation_id": correlation_id,
                "parent_run_id": parent_run_id,
                "metadata": metadata,
            }
        )
        return await self._post("start_run", m.RunResult, body, idempotency_key)

    async def end_run(
        self,
        run_id: str,
        *,
        status: str,
        error_message: str | None = None,
        error_code: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> Reply[m.EndRunResult]:
        body = to_wire(
            {"status": status, "error_message": error_message, "error_code": error_code, "metadata": metadata}
        )
        return await self._post("end_run", m.EndRunResult, body, idempotency_key, {"run_id": run_id}, durable)

    async def get_run(self, run_id: str) -> m.RunDetails:
        return await self._get("get_run", m.RunDetails, path_params={"run_id": run_id})

    async def get_run_timeline(
        self, run_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> m.RunTimeline:
        return await self._get(
            "get_run_timeline",
            m.RunTimeline,
            path_params={"run_id": run_id},
            params={"limit": limit, "cursor": cursor},
        )

    async def emit_event(
        self,
        *,
        run_id: str,
        event_type: str,
        quantity: Decimal | None = None,
        units: str | None = None,
        description: str | None = None,
        cost_units: Decimal | None = None,
        correlation_id: str | None = None,
        parent_event_id: str | None = None,
        span_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> Reply[m.EventResult]:
        body = to_wire(
            {
                "run_id": run_id,
                "event_type": event_type,
                "quantity": quantity,
                "units": units,
                "description": description,
                "cost_units": cost_units,
                "correlation_id": correlation_id,
                "parent_event_id": parent_event_id,
                "span_id": span_id,
                "metadata": metadata,
            }
        )
        return await self._post("emit_event", m.EventResult, body, idempotency_key, durable=durable)

    async def emit_events_batch(
        self, *, events: Sequence[Mapping[str, Any]], idempotency_key: str | None = None, durable: bool = False
    ) -> Reply[m.EmitEventsBatchResult]:
        """Send events (already camelCase, each with its own ``idempotencyKey``) in one request."""
        return await self._post(
            "emit_events_batch", m.EmitEventsBatchResult, {"events": events}, idempotency_key, durable=durable
        )

    async def record_run(
        self,
        *,
        customer_id: str,
        workflow: str,
        events: Sequence[Mapping[str, Any]],
        status: str,
        error_message: str | None = None,
        error_code: str | None = None,
        external_run_id: str | None = None,
        correlation_id: str | None = None,
        parent_run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        durable: bool = False,
    ) -> Reply[m.RecordRunResult]:
        """Record a whole run in one call (``POST /runs/record``); unknown workflow slugs are created."""
        body = to_wire(
            {
                "customer_id": customer_id,
                "workflow": workflow,
                "events": events,
                "status": status,
                "error_message": error_message,
                "error_code": error_code,
                "external_run_id": external_run_id,
                "correlation_id": correlation_id,
                "parent_run_id": parent_run_id,
                "metadata": metadata,
            }
        )
        return await self._post("record_run", m.RecordRunResult, body, idempotency_key, durable=durable)

    # --- webhooks (secret key) ----------------------------------------------------------------

    async def create_webhook(
        self,
        *,
        url: str,
        events: list[str],
        description: str | None = None,
        filters: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[m.Webhook]:
        """Create a webhook. The reply's raw body keeps the one-time secret; see `webhook_secret`."""
        body = to_wire({"url": url, "events": events, "description": description, "filters": filters})
        return await self._post("create_webhook", m.Webhook, body, idempotency_key)

    async def create_webhook_with_secret(
        self,
        *,
        url: str,
        events: list[str],
        description: str | None = None,
        filters: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Reply[m.Webhook], m.WebhookSecret]:
        """Create a webhook and return its one-time ``whsec_`` secret separately from the model."""
        body = to_wire({"url": url, "events": events, "description": description, "filters": filters})

        def parse(data: Any) -> tuple[m.Webhook, m.WebhookSecret]:
            return parse_model(m.Webhook, data, "create_webhook"), parse_model(m.WebhookSecret, data, "create_webhook")

        (webhook, secret), key = await self._call("create_webhook", parse, body=body, idempotency_key=idempotency_key)
        assert key is not None
        return Reply(webhook, key), secret

    async def list_webhooks(self) -> Page[m.Webhook]:
        return await self._page("list_webhooks", m.Webhook, {})

    async def get_webhook(self, webhook_id: str) -> m.Webhook:
        return await self._get("get_webhook", m.Webhook, path_params={"webhook_id": webhook_id})

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.request("delete_webhook", path_params={"webhook_id": webhook_id})

    async def test_webhook(self, webhook_id: str, *, idempotency_key: str | None = None) -> Reply[m.WebhookTestResult]:
        return await self._post("test_webhook", m.WebhookTestResult, {}, idempotency_key, {"webhook_id": webhook_id})

    async def rotate_webhook_secret(
        self, webhook_id: str, *, idempotency_key: str | None = None
    ) -> Reply[m.WebhookSecret]:
        return await self._post(
            "rotate_webhook_secret", m.WebhookSecret, {}, idempotency_key, {"webhook_id": webhook_id}
        )


def _parser(model: type[T], endpoint: str) -> Callable[[Any], T]:
    """Parse a reply into `model` (`parse_model`), as `DripClient._call` runs it."""

    def parse(data: Any) -> T:
        return parse_model(model, data, endpoint)

    return parse
