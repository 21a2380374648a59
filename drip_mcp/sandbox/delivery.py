"""Background delivery of webhook events, signed like Drip's.

Events wait in the store's ``deliveries`` table (written in the same
transaction as the change that caused them). `DeliveryWorker.run` sends each
as ``POST <url>`` with the JSON body ``{"id", "type", "createdAt", "data"}``
and ``X-Drip-Signature`` from `drip_mcp.signing.sign`, keyed with the
webhook's secret at the time of the attempt. A 2xx answer marks the delivery
DELIVERED; anything else (or a network error) is retried after each of the
configured delays, then marked FAILED.

Without a running worker (a `Sandbox` that was never entered, and an app whose
lifespan never ran) deliveries simply stay PENDING; they go out once a worker
starts. Run one worker per database file.
"""

from __future__ import annotations

import math
import time

import anyio
import httpx2

from drip_mcp.sandbox.store import Record, Store
from drip_mcp.signing import SIGNATURE_HEADER, sign

__all__ = ["DeliveryWorker"]

DELIVERY_TIMEOUT_S = 5.0


class DeliveryWorker:
    """Sends pending webhook deliveries; `notify` wakes it after new ones are stored."""

    def __init__(
        self,
        store: Store,
        *,
        retry_delays_s: tuple[float, ...],
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._retry_delays_s = retry_delays_s
        self._transport = transport
        self._wake: anyio.Event | None = None
        store.delivery_listener = self.notify

    def notify(self) -> None:
        """Wake the worker (called by the store after a commit that enqueued deliveries)."""
        if self._wake is not None:
            self._wake.set()

    def _client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=self._transport, timeout=DELIVERY_TIMEOUT_S)

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with self._client() as client:
            while True:
                self._wake = anyio.Event()
                due = self._store.due_deliveries(time.time())
                if due:
                    async with anyio.create_task_group() as group:
                        for delivery in due:
                            group.start_soon(self._attempt, client, delivery, True)
                    continue
                next_due = self._store.next_delivery_due()
                wait_s = math.inf if next_due is None else max(0.0, next_due - time.time())
                with anyio.move_on_after(wait_s):
                    await self._wake.wait()

    async def send_test(self, webhook_id: str) -> Record:
        """Send one ``webhook.test`` event now (no retries); returns the finished delivery."""
        delivery = self._store.create_test_delivery(webhook_id)
        async with self._client() as client:
            await self._attempt(client, delivery, retry=False)
        return self._store.delivery(delivery["id"])

    async def resend(self, webhook_id: str, delivery_id: str) -> Record:
        """Send a finished delivery once more now (a manual retry, no automatic retries); returns it after."""
        delivery = self._store.claim_for_retry(webhook_id, delivery_id)
        async with self._client() as client:
            await self._attempt(client, delivery, retry=False)
        return self._store.delivery(delivery_id)

    async def _attempt(self, client: httpx2.AsyncClient, delivery: Record, retry: bool) -> None:
        payload: bytes = delivery["payload"]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "drip-sandbox-webhooks/1",
            SIGNATURE_HEADER: sign(payload, delivery["secret"]),
            "X-Drip-Event": delivery["event_type"],
            "X-Drip-Delivery": delivery["id"],
        }
        code: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery["url"], content=payload, headers=headers)
            code = response.status_code
            if not response.is_success:
                error = f"HTTP {code}"
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts_done = delivery["attempts"] + 1
        if error is None:
            status, next_at = "DELIVERED", 0.0
        elif retry and attempts_done <= len(self._retry_delays_s):
            status, next_at = "PENDING", time.time() + self._retry_delays_s[attempts_done - 1]
        else:
            status, next_at = "FAILED", 0.0
        self._store.record_attempt(
            delivery["id"], status=status, response_code=code, error_message=error, next_attempt_at=next_at
        )
