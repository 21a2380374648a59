"""Toolset ``webhooks`` (secret key only): manage webhook endpoints and their signing secrets.

A ``whsec_`` secret is shown by Drip once, on create and on rotate. It must not
land in the model's context by default: the tools write it to a file only the
user can read (0600, in the state directory) and return it masked with the
file's path. ``reveal_secret: true`` returns it in full, and says so.

Each secret file belongs to the tenant that wrote it (recorded in the state
store, `Services.files`): only that tenant's ``drip_delete_webhook`` removes it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_serializer

from drip_mcp.api.models import Webhook
from drip_mcp.api.wire import new_idempotency_key
from drip_mcp.errors import NotFoundError
from drip_mcp.keys import KeyType
from drip_mcp.masking import mask_key
from drip_mcp.paths import ensure_private_dir
from drip_mcp.tools.base import (
    CustomerId,
    IdempotencyKey,
    Meter,
    MutationResult,
    ToolInput,
    ToolOutput,
    ToolSpec,
    from_wire,
    spec_factory,
)
from drip_mcp.tools.context import ToolContext
from drip_mcp.tools.declare import operation, snake_keys

_SAFE_FILE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
WebhookId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]  # also a file name
RevealSecret = Annotated[
    bool,
    Field(
        description="Return the full whsec_ secret in this result. The model (you) will then see it; by default "
        "it is only written to a user-only file whose path is returned."
    ),
]


class WebhookFilters(ToolInput):
    """Deliver only events that match every filter given (Drip's ``filters``)."""

    usage_types: list[Meter] | None = Field(default=None, max_length=100)
    customer_ids: list[CustomerId] | None = Field(default=None, max_length=100)
    severities: list[Literal["low", "medium", "high", "critical"]] | None = Field(default=None, max_length=4)

    def wire(self) -> dict[str, Any]:
        """Drip's shape: ``{usageTypes, customerIds, severities}``, unset filters left out."""
        fields = {"usageTypes": self.usage_types, "customerIds": self.customer_ids, "severities": self.severities}
        return {k: v for k, v in fields.items() if v is not None}


Filters = Annotated[WebhookFilters | None, Field(description="Only matching events are delivered.")]


def mask_secret(secret: str) -> str:
    """``whsec_…a1b2`` (`drip_mcp.masking.mask_key`, the one display rule)."""
    return mask_key(secret)


def secret_path(directory: Path, webhook_id: str) -> Path:
    """``<dir>/<webhook_id>.secret``; an id unfit for a file name (from Drip, so not ours to trust) is hashed."""
    if not _SAFE_FILE_ID.fullmatch(webhook_id) or webhook_id in (".", ".."):
        webhook_id = hashlib.sha256(webhook_id.encode()).hexdigest()[:32]
    return directory / f"{webhook_id}.secret"


def store_secret(directory: Path, webhook_id: str, secret: str) -> Path:
    """Write the secret to `secret_path` with mode 0600 (atomic replace)."""
    ensure_private_dir(directory)
    target = secret_path(directory, webhook_id)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(target)
    return target


class WebhookInfo(ToolOutput):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    filters: dict[str, Any] | None = None
    is_active: bool = True
    health_status: str | None = None
    created_at: str | None = None


def _info(w: Webhook) -> WebhookInfo:
    return from_wire(WebhookInfo, w, filters=snake_keys(w.filters))


class SecretFields(MutationResult):
    secret_masked: str = Field(description="The signing secret, masked.")
    secret_file: str = Field(description="A file readable only by the user that holds the full secret.")
    secret: str | None = Field(default=None, description="The full secret, only when reveal_secret was true.")


async def _secret_fields(ctx: ToolContext, webhook_id: str, secret: str, reveal: bool) -> dict[str, Any]:
    path = store_secret(ctx.services.secrets_dir, webhook_id, secret)
    await ctx.services.files.own_secret_file(ctx.tenant, webhook_id)
    return {
        "secret_masked": mask_secret(secret),
        "secret_file": str(path),
        "secret": secret if reveal else None,
    }


class CreateWebhookInput(ToolInput):
    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")] = Field(
        description="HTTPS endpoint that receives signed POSTs (http:// only for localhost)."
    )
    events: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=100, description="Event types, e.g. ['charge.succeeded'], or ['*'] for all."
    )
    description: Annotated[str | None, Field(max_length=500)] = None
    filters: Filters = None
    reveal_secret: RevealSecret = False
    idempotency_key: IdempotencyKey = None


class CreateWebhookOutput(SecretFields):
    webhook: WebhookInfo


async def create_webhook(ctx: ToolContext, inp: CreateWebhookInput) -> CreateWebhookOutput:
    reply, secret = await ctx.client.create_webhook_with_secret(
        url=inp.url,
        events=inp.events,
        description=inp.description,
        filters=inp.filters.wire() if inp.filters else None,
        idempotency_key=inp.idempotency_key,
    )
    return CreateWebhookOutput(
        webhook=_info(reply.data),
        idempotency_key=reply.idempotency_key,
        **await _secret_fields(ctx, reply.data.id, secret.secret, inp.reveal_secret),
    )


class ListWebhooksInput(ToolInput):
    active_only: bool = Field(default=False, description="Only endpoints Drip still delivers to.")


class ListWebhooksOutput(ToolOutput):
    webhooks: list[WebhookInfo]
    count: int


async def list_webhooks(ctx: ToolContext, inp: ListWebhooksInput) -> ListWebhooksOutput:
    page = await ctx.client.list_webhooks()
    hooks = [_info(w) for w in page.data if w.is_active or not inp.active_only]
    return ListWebhooksOutput(webhooks=hooks, count=len(hooks))


class WebhookRef(ToolInput):
    webhook_id: WebhookId


async def get_webhook(ctx: ToolContext, inp: WebhookRef) -> WebhookInfo:
    return _info(await ctx.client.get_webhook(inp.webhook_id))


class DeleteWebhookInput(WebhookRef):
    idempotency_key: IdempotencyKey = None


class DeleteWebhookOutput(MutationResult):
    deleted: bool
    webhook_id: str


async def _remove_own_secret_file(ctx: ToolContext, webhook_id: str) -> bool:
    """Remove the webhook's secret file if this tenant wrote it; False (file untouched) otherwise.

    The ownership record stays, so a retried delete still recognises the tenant's webhook.
    """
    if await ctx.services.files.secret_file_owner(webhook_id) != ctx.tenant:
        return False
    secret_path(ctx.services.secrets_dir, webhook_id).unlink(missing_ok=True)
    return True


async def delete_webhook(ctx: ToolContext, inp: DeleteWebhookInput) -> DeleteWebhookOutput:
    """A DELETE carries no body, so the key is not sent; it marks a retry: then "already gone" is success.

    "Already gone" counts only for a webhook this tenant created here (it owns its secret file): a 404 for
    any other id stays NOT_FOUND. Only the tenant's own secret file is removed.
    """
    key = inp.idempotency_key or new_idempotency_key("whdel")
    try:
        await ctx.client.delete_webhook(inp.webhook_id)
    except NotFoundError:
        if inp.idempotency_key is None or not await _remove_own_secret_file(ctx, inp.webhook_id):
            raise
        duplicate = True
    else:
        duplicate = False
        await _remove_own_secret_file(ctx, inp.webhook_id)
    return DeleteWebhookOutput(deleted=True, webhook_id=inp.webhook_id, idempotency_key=key, is_duplicate=duplicate)


class TestWebhookInput(WebhookRef):
    idempotency_key: IdempotencyKey = None


class TestWebhookOutput(MutationResult):
    delivery_status: str = Field(description="DELIVERED, FAILED or NOT_SENT.")
    delivery_id: str | None = None
    response_code: int | None = None
    message: str | None = None


async def test_webhook(ctx: ToolContext, inp: TestWebhookInput) -> TestWebhookOutput:
    reply = await ctx.client.test_webhook(inp.webhook_id, idempotency_key=inp.idempotency_key)
    r = reply.data
    return TestWebhookOutput(
        delivery_status=r.status,
        delivery_id=r.delivery_id,
        response_code=r.response_code,
        message=r.message,
        idempotency_key=reply.idempotency_key,
    )


class RotateSecretInput(WebhookRef):
    reveal_secret: RevealSecret = False
    idempotency_key: IdempotencyKey = None


class RotateSecretOutput(SecretFields):
    webhook_id: str


async def rotate_webhook_secret(ctx: ToolContext, inp: RotateSecretInput) -> RotateSecretOutput:
    reply = await ctx.client.rotate_webhook_secret(inp.webhook_id, idempotency_key=inp.idempotency_key)
    return RotateSecretOutput(
        webhook_id=inp.webhook_id,
        idempotency_key=reply.idempotency_key,
        **await _secret_fields(ctx, inp.webhook_id, reply.data.secret, inp.reveal_secret),
    )


class UpdateWebhookInput(ToolInput):
    webhook_id: WebhookId
    url: Annotated[str | None, Field(max_length=2048, pattern=r"^https?://[^\s]+$")] = None
    events: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=50, description="Event types to receive; ['*'] = all."
    )
    description: Annotated[str | None, Field(max_length=500)] = None
    is_active: bool | None = Field(default=None, description="false pauses deliveries.")
    filters: Filters = None
    idempotency_key: IdempotencyKey = None

    @field_serializer("filters")
    def _filters(self, filters: WebhookFilters | None) -> dict[str, Any] | None:
        return None if filters is None else filters.wire()


class DeliveriesInput(ToolInput):
    webhook_id: WebhookId
    limit: int = Field(default=20, ge=1, le=100)


DeliveryId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


class DeliveryRef(ToolInput):
    webhook_id: WebhookId
    delivery_id: DeliveryId = Field(description="Delivery id (drip_list_webhook_deliveries).")


class RetryDeliveryInput(DeliveryRef):
    idempotency_key: IdempotencyKey = None


_spec = spec_factory("webhooks", KeyType.SECRET)


_SIGNING_NOTE = (
    " The new whsec_ signing secret is returned masked and saved to a user-only file (secret_file); set "
    "reveal_secret: true only if the user needs it in this conversation."
)

TOOLS: tuple[ToolSpec[Any, Any], ...] = (
    _spec(
        "drip_create_webhook",
        "Create webhook",
        "Register an endpoint that Drip will POST signed events to (X-Drip-Signature)." + _SIGNING_NOTE,
        create_webhook,
        CreateWebhookInput,
        CreateWebhookOutput,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    _spec(
        "drip_list_webhooks",
        "List webhooks",
        "List webhook endpoints (secrets are never listed). Read-only.",
        list_webhooks,
        ListWebhooksInput,
        ListWebhooksOutput,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    _spec(
        "drip_get_webhook",
        "Get webhook",
        "Get one webhook endpoint by id. Read-only.",
        get_webhook,
        WebhookRef,
        WebhookInfo,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    _spec(
        "drip_delete_webhook",
        "Delete webhook",
        "Delete a webhook endpoint: Drip stops delivering to it. Cannot be undone. When retrying, pass the "
        "idempotency_key from the first attempt: a webhook already gone then counts as deleted.",
        delete_webhook,
        DeleteWebhookInput,
        DeleteWebhookOutput,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    _spec(
        "drip_test_webhook",
        "Test webhook",
        "Send a signed test event to a webhook endpoint now and report whether it was delivered.",
        test_webhook,
        TestWebhookInput,
        TestWebhookOutput,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    _spec(
        "drip_rotate_webhook_secret",
        "Rotate webhook secret",
        "Replace a webhook's signing secret; the old secret stops verifying immediately." + _SIGNING_NOTE,
        rotate_webhook_secret,
        RotateSecretInput,
        RotateSecretOutput,
        read_only=False,
        destructive=True,
        idempotent=False,
    ),
    operation(
        "drip_update_webhook",
        "Update webhook",
        "Change a webhook's url, events, description or filters, or pause it (is_active: false).",
        toolset="webhooks",
        endpoint="update_webhook",
        input_model=UpdateWebhookInput,
        destructive=True,
        idempotent=True,
    ),
    operation(
        "drip_list_webhook_deliveries",
        "List webhook deliveries",
        "List a webhook's deliveries, newest first: event, status, attempts, response code. Read-only.",
        toolset="webhooks",
        endpoint="list_webhook_deliveries",
        input_model=DeliveriesInput,
    ),
    operation(
        "drip_get_webhook_delivery",
        "Get webhook delivery",
        "Get one delivery with the payload that was sent. Read-only.",
        toolset="webhooks",
        endpoint="get_webhook_delivery",
        input_model=DeliveryRef,
    ),
    operation(
        "drip_retry_webhook_delivery",
        "Retry webhook delivery",
        "Send a delivered or failed delivery once more, now; returns it after the attempt.",
        toolset="webhooks",
        endpoint="retry_webhook_delivery",
        input_model=RetryDeliveryInput,
    ),
)
