"""`drip_mcp.api.client.DripClient` against `httpx2.MockTransport`: URLs, auth, scope, retries, idempotency."""

from __future__ import annotations

import json
import logging
import string
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import anyio
import httpx2
import pytest

from drip_mcp._version import __version__
from drip_mcp.api import retrying
from drip_mcp.api.client import DripClient
from drip_mcp.api.endpoints import ENDPOINTS, Endpoint
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DripConnectionError,
    DripError,
    DripTimeoutError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PublicKeyNotAllowedError,
    RateLimitError,
    UnprocessableEntityError,
)
from drip_mcp.keys import ApiKey, KeyType
from drip_mcp.settings import DEFAULT_CALL_DEADLINE, Settings

SK = "sk_test_Zq81xWm4Kd7Lp2Vn9f3a"
PK = "pk_test_Yr72yXn5Le8Mq3Wo0g4b"
BASE = "https://api.drip.test/v1"

SECRET_ENDPOINTS = [ep for ep in ENDPOINTS.values() if ep.scope is KeyType.SECRET]


class Recorder:
    """A MockTransport handler that records requests and replays scripted outcomes.

    Each script item is ``(status, json_body)``, ``(status, json_body, headers)``,
    ``(status, bytes)``, or an exception class to raise. The last item repeats.
    """

    def __init__(self, *script: Any) -> None:
        self.script = list(script) or [(200, {})]
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        item = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(item, type) and issubclass(item, httpx2.TransportError):
            raise item("scripted failure", request=request)
        status, body, *rest = item
        headers = rest[0] if rest else {}
        if isinstance(body, bytes):
            return httpx2.Response(status, content=body, headers=headers)
        return httpx2.Response(status, json=body, headers=headers)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    @property
    def count(self) -> int:
        return len(self.requests)


class SleepRecorder:
    """An injected `sleep` that records the delays and never sleeps."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(autouse=True)
def _real_delays() -> Iterator[None]:
    """Delays reach the injected sleep only when testing mode is off; restore whatever was set."""
    before = retrying.sleeping_enabled()
    retrying.set_testing(False)
    yield
    retrying.set_testing(not before)


@pytest.fixture
def sleeper() -> SleepRecorder:
    return SleepRecorder()


def make_client(
    handler: Recorder,
    sleeper: SleepRecorder,
    *,
    key: str = SK,
    base_url: str = BASE,
    max_retries: int = 3,
) -> DripClient:
    return DripClient(
        ApiKey(key),
        base_url=base_url,
        retry=RetryPolicy(max_retries=max_retries),
        transport=httpx2.MockTransport(handler),
        sleep=sleeper,
    )


def path_params_for(ep: Endpoint) -> dict[str, str]:
    names = [field for _, field, _, _ in string.Formatter().parse(ep.path) if field]
    return {name: f"id_{name}" for name in names}


CUSTOMER = {"id": "cus_1", "createdAt": "2025-01-01T00:00:00Z"}
TRACK_RESULT = {"usageEventId": "ue_1", "customerId": "cus_1", "usageType": "tokens", "quantity": "0.5"}
CHARGE_RESULT = {
    "usageEventId": "ue_2",
    "charge": {"id": "chg_1", "amountUsdc": "0.100000", "status": "PENDING"},
}


@pytest.fixture
async def ok_client(sleeper: SleepRecorder) -> AsyncIterator[tuple[DripClient, Recorder]]:
    handler = Recorder((200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        yield client, handler


# --- URLs and headers ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_urls_resolve_against_base_and_health_at_root(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"status": "ok"}))
    async with make_client(handler, sleeper, base_url=BASE + "/") as client:
        assert (await client.health()).status == "ok"
        await client.request("get_customer", path_params={"customer_id": "cus_1"})
        await client.request("list_customers", params={"limit": 5, "offset": None, "external_id": "x"})
        await client.request("get_balance", path_params={"customer_id": "cus_9"})

    urls = [str(r.url) for r in handler.requests]
    assert urls == [
        "https://api.drip.test/health",
        "https://api.drip.test/v1/customers/cus_1",
        "https://api.drip.test/v1/customers?limit=5&externalId=x",
        "https://api.drip.test/v1/customers/cus_9/balance",
    ]
    assert [r.method for r in handler.requests] == ["GET"] * 4


@pytest.mark.anyio
async def test_every_endpoint_uses_its_declared_method_and_path(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {}))
    async with make_client(handler, sleeper) as client:
        for ep in ENDPOINTS.values():
            await client.request(ep.name, path_params=path_params_for(ep))

    assert handler.count == len(ENDPOINTS)
    for ep, request in zip(ENDPOINTS.values(), handler.requests, strict=True):
        expected_path = ep.path.format_map(path_params_for(ep))
        prefix = "" if ep.name == "health" else "/v1"
        assert request.method == ep.method
        assert request.url.path == prefix + expected_path


@pytest.mark.anyio
async def test_auth_and_user_agent_headers(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"data": [], "count": 0}), (200, TRACK_RESULT))
    async with make_client(handler, sleeper) as client:
        await client.list_customers()
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    for request in handler.requests:
        assert request.headers["Authorization"] == f"Bearer {SK}"
        assert request.headers["User-Agent"] == f"drip-mcp/{__version__}"
    assert handler.requests[1].headers["Content-Type"] == "application/json"


@pytest.mark.anyio
async def test_shared_pool_carries_no_credentials_and_each_client_sends_its_own(
    sleeper: SleepRecorder,
) -> None:
    handler = Recorder((200, {"data": [], "count": 0}))
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as pool:
        a = DripClient(ApiKey(SK), base_url=BASE, http=pool, sleep=sleeper)
        b = DripClient(ApiKey(PK), base_url=BASE, http=pool, sleep=sleeper)
        await a.list_customers()
        await b.list_customers()
        await a.aclose()  # does not close a pool it does not own
        await b.list_customers()
        assert "authorization" not in pool.headers

    assert [r.headers["Authorization"] for r in handler.requests] == [
        f"Bearer {SK}",
        f"Bearer {PK}",
        f"Bearer {PK}",
    ]


# --- scope guard -------------------------------------------------------------------------------


# Routes only a secret key may call (DESIGN "Keys and scope"; reference §12's intersection).
SECRET_ROUTES = (
    "/webhooks",
    "/contracts",
    "/entitlement-plans",
    "/entitlement-rules",
    "/customers/{customer_id}/entitlement",
)
SECRET_ROUTE_SUFFIXES = ("/provision", "/sync-balance")


def _secret_by_rule(ep: Endpoint) -> bool:
    return ep.path.startswith(SECRET_ROUTES) or ep.path.endswith(SECRET_ROUTE_SUFFIXES)


def test_endpoints_declare_the_secret_only_routes_secret_only() -> None:
    secret = {ep.name for ep in SECRET_ENDPOINTS}
    assert {"create_webhook", "list_webhooks", "delete_webhook", "rotate_webhook_secret"} <= secret
    assert {
        "create_contract",
        "add_contract_override",
        "create_entitlement_plan",
        "assign_customer_entitlement",
    } <= secret
    assert {"provision_customer", "sync_customer_balance"} <= secret
    assert [ep.name for ep in ENDPOINTS.values() if _secret_by_rule(ep)] == [ep.name for ep in SECRET_ENDPOINTS]
    assert ENDPOINTS["check_entitlement"].scope is KeyType.PUBLIC
    assert ENDPOINTS["create_subscription"].scope is KeyType.PUBLIC


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", SECRET_ENDPOINTS, ids=lambda ep: ep.name)
async def test_public_key_is_refused_before_any_request(endpoint: Endpoint, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {}))
    async with make_client(handler, sleeper, key=PK) as client:
        assert not client.allows(endpoint)
        with pytest.raises(PublicKeyNotAllowedError) as info:
            await client.request(endpoint.name, path_params=path_params_for(endpoint), body={"url": "x"})

    assert handler.count == 0
    assert info.value.status == 403
    assert info.value.code == "PUBLIC_KEY_NOT_ALLOWED"
    assert endpoint.name in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", SECRET_ENDPOINTS, ids=lambda ep: ep.name)
async def test_secret_key_sends_secret_only_endpoints(endpoint: Endpoint, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {}))
    async with make_client(handler, sleeper, key=SK) as client:
        assert client.allows(endpoint)
        await client.request(endpoint.name, path_params=path_params_for(endpoint), body={"url": "x"})

    assert handler.count == 1
    assert handler.requests[0].method == endpoint.method


WEBHOOK = {"id": "wh_1", "url": "https://hooks.example/x", "events": ["charge.succeeded"]}


async def _call_webhook_method(client: DripClient, name: str) -> Any:
    if name == "create_webhook":
        return await client.create_webhook(url="https://hooks.example/x", events=["charge.succeeded"])
    if name == "list_webhooks":
        return await client.list_webhooks()
    if name == "delete_webhook":
        return await client.delete_webhook("wh_1")
    assert name == "rotate_webhook_secret"
    return await client.rotate_webhook_secret("wh_1")


WEBHOOK_METHODS = ["create_webhook", "list_webhooks", "delete_webhook", "rotate_webhook_secret"]
WEBHOOK_REPLIES = {
    "create_webhook": WEBHOOK,
    "list_webhooks": {"data": [WEBHOOK], "count": 1},
    "delete_webhook": {"success": True},
    "rotate_webhook_secret": {"secret": "whsec_abcdef"},
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", WEBHOOK_METHODS)
async def test_typed_webhook_methods_refuse_public_key(name: str, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, WEBHOOK_REPLIES[name]))
    async with make_client(handler, sleeper, key=PK) as client:
        with pytest.raises(PublicKeyNotAllowedError):
            await _call_webhook_method(client, name)
    assert handler.count == 0


@pytest.mark.anyio
@pytest.mark.parametrize("name", WEBHOOK_METHODS)
async def test_typed_webhook_methods_send_with_secret_key(name: str, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, WEBHOOK_REPLIES[name]))
    async with make_client(handler, sleeper, key=SK) as client:
        await _call_webhook_method(client, name)
    assert handler.count == 1


@pytest.mark.anyio
async def test_public_key_may_call_public_endpoints(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {}))
    async with make_client(handler, sleeper, key=PK) as client:
        for ep in ENDPOINTS.values():
            if ep.scope is KeyType.PUBLIC:
                await client.request(ep.name, path_params=path_params_for(ep))
    assert handler.count == sum(ep.scope is KeyType.PUBLIC for ep in ENDPOINTS.values())


# --- idempotency -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_retries_reuse_one_generated_idempotency_key_and_return_it(sleeper: SleepRecorder) -> None:
    handler = Recorder((500, {"message": "a"}), (500, {"message": "b"}), (200, TRACK_RESULT))
    async with make_client(handler, sleeper) as client:
        reply = await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("0.5"))

    assert handler.count == 3
    keys = [body["idempotencyKey"] for body in handler.bodies]
    assert len(set(keys)) == 1
    assert keys[0].startswith("track_")
    assert reply.idempotency_key == keys[0]
    assert reply.data.usage_event_id == "ue_1"
    assert len(sleeper.delays) == 2


@pytest.mark.anyio
async def test_caller_idempotency_key_is_sent_verbatim(sleeper: SleepRecorder) -> None:
    handler = Recorder((503, {}), (200, CHARGE_RESULT))
    async with make_client(handler, sleeper) as client:
        reply = await client.charge(
            customer_id="cus_1", meter="tokens", quantity=Decimal("2"), idempotency_key="Caller-Key:001"
        )

    assert [body["idempotencyKey"] for body in handler.bodies] == ["Caller-Key:001", "Caller-Key:001"]
    assert reply.idempotency_key == "Caller-Key:001"


@pytest.mark.anyio
async def test_two_separate_calls_get_different_keys(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        first = await client.create_customer(external_customer_id="u1")
        second = await client.create_customer(external_customer_id="u1")

    sent = [body["idempotencyKey"] for body in handler.bodies]
    assert sent == [first.idempotency_key, second.idempotency_key]
    assert first.idempotency_key != second.idempotency_key
    assert first.idempotency_key.startswith("cus_")


@pytest.mark.anyio
@pytest.mark.parametrize("ep", [ep for ep in ENDPOINTS.values() if ep.mutating], ids=lambda ep: ep.name)
async def test_every_mutating_endpoint_carries_idempotency_key(ep: Endpoint, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {}))
    async with make_client(handler, sleeper) as client:
        _, key = await client.request(ep.name, path_params=path_params_for(ep), body={"a": 1})

    assert handler.bodies == [{"a": 1, "idempotencyKey": key}]
    assert key is not None
    assert key.startswith(ep.key_prefix + "_")
    assert len(key) <= 128


@pytest.mark.anyio
async def test_reads_carry_no_body_and_no_key(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"data": [], "count": 0}))
    async with make_client(handler, sleeper) as client:
        data, key = await client.request("list_customers")
    assert key is None
    assert data == {"data": [], "count": 0}
    assert handler.requests[0].content == b""


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_retry_after_header_seconds_is_honoured(sleeper: SleepRecorder) -> None:
    handler = Recorder((429, {"message": "slow"}, {"Retry-After": "7"}), (200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        customer = await client.get_customer("cus_1")

    assert customer.id == "cus_1"
    assert handler.count == 2
    assert sleeper.delays == [7.0]


@pytest.mark.anyio
async def test_body_retry_after_is_honoured(sleeper: SleepRecorder) -> None:
    handler = Recorder((503, {"message": "busy", "retryAfter": 3}), (200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        await client.get_customer("cus_1")

    assert sleeper.delays == [3.0]


@pytest.mark.anyio
async def test_retry_after_is_capped(sleeper: SleepRecorder) -> None:
    # 90 s fits in the call's 120 s deadline (3600 s would not: see test_retry_after_beyond_the_deadline_...).
    handler = Recorder((429, {}, {"Retry-After": "90"}), (200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        await client.get_customer("cus_1")

    assert sleeper.delays == [RetryPolicy().max_retry_after]


@pytest.mark.anyio
async def test_backoff_without_retry_after_grows_within_jitter_bounds(sleeper: SleepRecorder) -> None:
    handler = Recorder((500, {}), (502, {}), (504, {}), (200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        await client.get_customer("cus_1")

    policy = RetryPolicy()
    assert len(sleeper.delays) == 3
    for attempt, delay in enumerate(sleeper.delays):
        ceiling = min(policy.max_delay, policy.base_delay * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.anyio
async def test_testing_mode_sleeps_zero(sleeper: SleepRecorder) -> None:
    retrying.set_testing(True)
    handler = Recorder((429, {}, {"Retry-After": "30"}), (200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        await client.get_customer("cus_1")
    assert sleeper.delays == [0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_not_retried(status: int, cls: type[APIStatusError], sleeper: SleepRecorder) -> None:
    handler = Recorder(
        (status, {"message": f"nope {status}"}, {"Retry-After": "1", "X-Request-Id": "req_42"}),
        (200, TRACK_RESULT),
    )
    async with make_client(handler, sleeper) as client:
        with pytest.raises(cls) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert handler.count == 1
    assert sleeper.delays == []
    exc = info.value
    assert exc.status == status
    assert exc.message == f"nope {status}"
    assert exc.request_id == "req_42"
    assert exc.idempotency_key == handler.bodies[0]["idempotencyKey"]
    assert exc.retryable is False


@pytest.mark.anyio
async def test_exhausted_retries_raise_the_last_server_error(sleeper: SleepRecorder) -> None:
    handler = Recorder((500, {"message": "fail 1"}), (502, {"message": "fail 2"}), (503, {"message": "fail 3"}))
    async with make_client(handler, sleeper, max_retries=2) as client:
        with pytest.raises(InternalServerError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert handler.count == 3
    assert len(sleeper.delays) == 2
    exc = info.value
    assert exc.message == "fail 3"
    assert exc.status == 503
    assert exc.retryable is True
    assert exc.to_dict()["retryable"] is True
    assert exc.idempotency_key == handler.bodies[0]["idempotencyKey"]
    assert len({b["idempotencyKey"] for b in handler.bodies}) == 1


@pytest.mark.anyio
async def test_exhausted_rate_limit_raises_rate_limit_error_with_retry_after(sleeper: SleepRecorder) -> None:
    handler = Recorder((429, {"message": "slow"}, {"Retry-After": "2"}))
    async with make_client(handler, sleeper, max_retries=1) as client:
        with pytest.raises(RateLimitError) as info:
            await client.list_customers()

    assert handler.count == 2
    assert sleeper.delays == [2.0]
    assert info.value.retry_after == 2.0


@pytest.mark.anyio
async def test_zero_retries_sends_once(sleeper: SleepRecorder) -> None:
    handler = Recorder((500, {}))
    async with make_client(handler, sleeper, max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client.list_customers()
    assert handler.count == 1
    assert sleeper.delays == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc_type", "drip_type", "code"),
    [
        (httpx2.ConnectError, DripConnectionError, "NETWORK_ERROR"),
        (httpx2.ReadTimeout, DripTimeoutError, "TIMEOUT"),
    ],
)
async def test_transport_errors_are_retried_then_translated(
    exc_type: type[Exception], drip_type: type[DripError], code: str, sleeper: SleepRecorder
) -> None:
    handler = Recorder(exc_type)
    async with make_client(handler, sleeper, max_retries=2) as client:
        with pytest.raises(drip_type) as info:
            await client.charge(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert handler.count == 3
    assert len(sleeper.delays) == 2
    exc = info.value
    assert type(exc) is drip_type
    assert not isinstance(exc, httpx2.HTTPError)
    assert exc.code == code
    assert exc.retryable is True
    assert exc.idempotency_key == handler.bodies[0]["idempotencyKey"]
    assert len({b["idempotencyKey"] for b in handler.bodies}) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("exc_type", [httpx2.ConnectError, httpx2.ReadTimeout])
async def test_transport_error_then_success_returns_result(exc_type: type[Exception], sleeper: SleepRecorder) -> None:
    handler = Recorder(exc_type, (200, CHARGE_RESULT))
    async with make_client(handler, sleeper) as client:
        reply = await client.charge(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert handler.count == 2
    assert reply.data.charge is not None
    assert reply.data.charge.amount_usdc == Decimal("0.1")
    assert len({b["idempotencyKey"] for b in handler.bodies}) == 1


# --- bodies, path params, responses ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("quantity", "wire"),
    [
        (Decimal("0.5"), b'"quantity":0.5,'),
        (Decimal("3"), b'"quantity":3,'),
        (Decimal("3.000"), b'"quantity":3,'),
        (Decimal("0.10"), b'"quantity":0.1,'),
    ],
)
async def test_decimal_quantities_serialize_as_json_numbers(
    quantity: Decimal, wire: bytes, sleeper: SleepRecorder
) -> None:
    handler = Recorder((200, TRACK_RESULT))
    async with make_client(handler, sleeper) as client:
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=quantity)

    raw = handler.requests[0].content
    assert wire in raw
    body = json.loads(raw)
    assert Decimal(str(body["quantity"])) == quantity
    assert type(body["quantity"]) is (int if quantity == quantity.to_integral_value() else float)
    assert body["customerId"] == "cus_1"
    assert body["usageType"] == "tokens"
    assert "units" not in body  # None fields are dropped


@pytest.mark.anyio
async def test_decimal_too_precise_for_json_is_refused_before_sending(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, TRACK_RESULT))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(InvalidInputError):
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("0.12345678901234567890123"))
    assert handler.count == 0


@pytest.mark.anyio
@pytest.mark.parametrize("quantity", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
async def test_non_finite_decimal_is_refused_as_invalid_input(quantity: Decimal, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, TRACK_RESULT))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(InvalidInputError):
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=quantity)
    assert handler.count == 0


@pytest.mark.anyio
@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "../admin", "cus_1/../x", "x?y=1", "x#y", "x%2Fy", "a\\b", ""])
async def test_unsafe_path_params_are_refused_before_sending(bad_id: str, sleeper: SleepRecorder) -> None:
    handler = Recorder((200, CUSTOMER))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(InvalidInputError):
            await client.get_customer(bad_id)
        with pytest.raises(InvalidInputError):
            await client.get_balance(bad_id)
        with pytest.raises(InvalidInputError):
            await client.delete_webhook(bad_id)
        with pytest.raises(InvalidInputError):
            await client.end_run(bad_id, status="COMPLETED")
    assert handler.count == 0


@pytest.mark.anyio
async def test_response_extra_fields_ignored_and_money_is_decimal(sleeper: SleepRecorder) -> None:
    balance = {
        "customerId": "cus_1",
        "balanceUsdc": "12.345678",
        "pendingChargesUsdc": 0.1,
        "availableUsdc": "12.245678",
        "brandNewField": {"nested": True},
        "anotherOne": 42,
    }
    handler = Recorder((200, balance))
    async with make_client(handler, sleeper) as client:
        result = await client.get_balance("cus_1")

    assert result.balance_usdc == Decimal("12.345678")
    assert isinstance(result.balance_usdc, Decimal)
    assert result.pending_charges_usdc == Decimal("0.1")
    assert isinstance(result.pending_charges_usdc, Decimal)
    assert result.available_usdc == Decimal("12.245678")
    assert not hasattr(result, "brand_new_field")
    assert "brandNewField" not in result.model_dump(by_alias=True)


@pytest.mark.anyio
async def test_list_envelope_parses(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"data": [CUSTOMER, {**CUSTOMER, "id": "cus_2", "extra": 1}], "count": 2}))
    async with make_client(handler, sleeper) as client:
        page = await client.list_customers(limit=2)
    assert [c.id for c in page.data] == ["cus_1", "cus_2"]
    assert page.count == 2


@pytest.mark.anyio
async def test_malformed_success_body_is_a_drip_error(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"unexpected": "shape"}))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(DripError) as info:
            await client.get_customer("cus_1")
    assert info.value.code == "INVALID_RESPONSE"


@pytest.mark.anyio
async def test_non_json_error_body_falls_back_to_generic_message(sleeper: SleepRecorder) -> None:
    handler = Recorder((502, b"<html>Bad Gateway</html>"))
    async with make_client(handler, sleeper, max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.list_customers()
    assert info.value.message == "Drip API returned HTTP 502"
    assert info.value.body == "<html>Bad Gateway</html>"


# --- secrecy ---------------------------------------------------------------------------------


def _assert_key_absent(text: str) -> None:
    assert SK not in text
    assert "Zq81xWm4Kd7Lp2Vn" not in text


@pytest.mark.anyio
async def test_raw_key_never_in_exceptions_or_logs(sleeper: SleepRecorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handler = Recorder(
        (500, {"message": "hiccup"}),
        httpx2.ConnectError,
        httpx2.ReadTimeout,
        (200, TRACK_RESULT),
        (401, {"message": "Invalid API key"}),
        (402, {"message": "pay", "checkoutUrl": "https://c.example/1"}),
        (503, {"message": "down"}),
    )
    errors: list[DripError] = []
    async with make_client(handler, sleeper, max_retries=3) as client:
        await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))
        for _ in range(3):
            with pytest.raises(DripError) as info:
                await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))
            errors.append(info.value)
        _assert_key_absent(repr(client))
    conn_handler = Recorder(httpx2.ConnectError)
    async with make_client(conn_handler, sleeper, max_retries=1) as client:
        with pytest.raises(DripConnectionError) as conn_info:
            await client.list_customers()
        errors.append(conn_info.value)
    refused = make_client(Recorder(), sleeper, key=PK)
    with pytest.raises(PublicKeyNotAllowedError) as refused_info:
        await refused.list_webhooks()
    await refused.aclose()
    errors.append(refused_info.value)

    assert [type(e) for e in errors] == [
        AuthenticationError,
        PaymentRequiredError,
        InternalServerError,
        DripConnectionError,
        PublicKeyNotAllowedError,
    ]
    for exc in errors:
        for text in (str(exc), repr(exc), json.dumps(exc.to_dict()), str(exc.__cause__), repr(exc.__cause__)):
            _assert_key_absent(text)

    assert caplog.records, "expected debug records from the retrying calls"
    assert any("retry" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        _assert_key_absent(record.getMessage())
        _assert_key_absent(repr(record.args))
    _assert_key_absent(caplog.text)


@pytest.mark.anyio
async def test_raw_key_echoed_by_server_is_not_repeated_in_the_error(sleeper: SleepRecorder) -> None:
    # errors.py promises server text is scrubbed at the HTTP boundary.
    handler = Recorder((401, {"message": f"Invalid API key: {SK}", "error": f"bad key {SK}"}))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.list_customers()

    exc = info.value
    _assert_key_absent(str(exc))
    _assert_key_absent(repr(exc))
    _assert_key_absent(json.dumps(exc.to_dict()))


def test_client_repr_is_masked() -> None:
    client = DripClient(ApiKey(SK), base_url=BASE)
    _assert_key_absent(repr(client))
    assert "sk_test_…9f3a" in repr(client)


@pytest.mark.anyio
async def test_from_settings_uses_base_url_and_max_retries() -> None:
    retrying.set_testing(True)  # from_settings takes no `sleep`; testing mode makes it sleep(0)
    settings = Settings.load({"DRIP_API_KEY": SK, "DRIP_API_URL": "https://other.drip.test", "DRIP_MAX_RETRIES": "1"})
    handler = Recorder((500, {}))
    async with DripClient.from_settings(settings, transport=httpx2.MockTransport(handler)) as client:
        assert client.retry.max_retries == 1
        with pytest.raises(InternalServerError):
            await client.list_customers()

    assert handler.count == 2
    assert str(handler.requests[0].url) == "https://other.drip.test/v1/customers"


# --- every write error carries its idempotency key ------------------------------------------------


@pytest.mark.anyio
async def test_garbage_success_body_on_a_write_carries_the_key_and_is_retryable(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, b"<html>not json</html>"))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(DripError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    exc = info.value
    assert exc.code == "INVALID_RESPONSE"
    assert exc.idempotency_key == handler.bodies[0]["idempotencyKey"]
    assert exc.to_dict()["idempotency_key"] == exc.idempotency_key
    assert exc.retryable is True  # the write may have landed; a retry with the key replays it
    assert exc.hint is not None
    assert exc.idempotency_key is not None


@pytest.mark.anyio
async def test_garbage_success_body_keeps_the_callers_key_for_every_typed_write(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"unexpected": "shape"}))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(DripError) as charge_info:
            await client.charge(customer_id="cus_1", meter="tokens", quantity=Decimal("1"), idempotency_key="mine_1")
        with pytest.raises(DripError) as webhook_info:
            await client.create_webhook_with_secret(url="https://h.example/x", events=["*"], idempotency_key="mine_2")

    assert (charge_info.value.code, charge_info.value.idempotency_key) == ("INVALID_RESPONSE", "mine_1")
    assert (webhook_info.value.code, webhook_info.value.idempotency_key) == ("INVALID_RESPONSE", "mine_2")


@pytest.mark.anyio
async def test_garbage_success_body_on_a_read_carries_no_key_and_stays_not_retryable(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"unexpected": "shape"}))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(DripError) as info:
            await client.get_customer("cus_1")
    assert info.value.idempotency_key is None
    assert info.value.retryable is False


@pytest.mark.anyio
async def test_local_validation_error_after_the_key_was_minted_carries_it(sleeper: SleepRecorder) -> None:
    handler = Recorder()
    async with make_client(handler, sleeper) as client:
        with pytest.raises(InvalidInputError) as too_precise:
            await client.track_usage(
                customer_id="cus_1", meter="tokens", quantity=Decimal("0.1000000000000000000001"), idempotency_key="k1"
            )
        with pytest.raises(InvalidInputError) as bad_path:
            await client.end_run("../etc", status="COMPLETED", idempotency_key="k2")
        with pytest.raises(InvalidInputError) as generated:
            await client.charge(customer_id="cus_1", meter="tokens", quantity=Decimal("Infinity"))

    assert handler.count == 0
    assert too_precise.value.idempotency_key == "k1"
    assert bad_path.value.idempotency_key == "k2"
    assert generated.value.idempotency_key is not None


@pytest.mark.anyio
async def test_request_errors_on_writes_carry_the_key_for_transport_and_http_failures(sleeper: SleepRecorder) -> None:
    for script in [(httpx2.ConnectError,), ((409, {"message": "dup"}),), ((500, {}),)]:
        handler = Recorder(*script)
        async with make_client(handler, sleeper, max_retries=0) as client:
            with pytest.raises(DripError) as info:
                await client.request("record_run", body={"customerId": "cus_1"})
        assert info.value.idempotency_key == handler.bodies[0]["idempotencyKey"]


# --- one deadline per call ----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that the injected sleep moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds


def clocked_client(handler: Recorder, clock: FakeClock, *, retry: RetryPolicy | None = None) -> DripClient:
    return DripClient(
        ApiKey(SK),
        base_url=BASE,
        timeout=30.0,
        retry=retry or RetryPolicy(max_retries=3),
        transport=httpx2.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
    )


@pytest.mark.anyio
async def test_retry_after_beyond_the_deadline_ends_the_call_at_once_with_key_and_retry_after() -> None:
    clock = FakeClock()
    handler = Recorder((429, {"message": "slow"}, {"Retry-After": "3600"}), (200, TRACK_RESULT))
    async with clocked_client(handler, clock) as client:
        assert client.deadline == 120.0  # timeout 30 s x (3 retries + 1)
        with pytest.raises(RateLimitError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert handler.count == 1
    assert sum(clock.delays) == 0
    exc = info.value
    assert exc.retry_after == 3600
    assert exc.to_dict()["retry_after"] == 3600
    assert exc.retryable is True
    assert exc.idempotency_key == handler.bodies[0]["idempotencyKey"]
    assert exc.hint is not None
    assert "3600 s" in exc.hint


@pytest.mark.anyio
async def test_503_retry_after_beyond_the_deadline_ends_with_a_retryable_server_error() -> None:
    clock = FakeClock()
    handler = Recorder((503, {"message": "maintenance", "retryAfter": 900}))
    async with clocked_client(handler, clock) as client:
        with pytest.raises(InternalServerError) as info:
            await client.list_customers()

    assert handler.count == 1
    assert clock.delays == []
    assert info.value.retry_after == 900
    assert info.value.retryable is True
    assert info.value.to_dict()["retry_after"] == 900


@pytest.mark.anyio
async def test_backoff_stops_at_the_call_deadline() -> None:
    clock = FakeClock()
    handler = Recorder((503, {"message": "busy"}))
    # Every backoff is 4-8 s, the whole call may take 10 s: one wait fits, a second would not.
    policy = RetryPolicy(max_retries=10, base_delay=8.0, max_delay=8.0, deadline=10.0)
    async with clocked_client(handler, clock, retry=policy) as client:
        with pytest.raises(InternalServerError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    assert sum(clock.delays) < 10.0
    assert handler.count == len(clock.delays) + 1 < 11
    assert info.value.idempotency_key == handler.bodies[0]["idempotencyKey"]


@pytest.mark.anyio
async def test_many_retry_afters_within_the_cap_never_outlast_the_deadline() -> None:
    clock = FakeClock()
    handler = Recorder((429, {}, {"Retry-After": "50"}))
    async with clocked_client(handler, clock) as client:  # deadline 120 s; before: 3 x 50 s = 150 s
        with pytest.raises(RateLimitError):
            await client.list_customers()

    assert clock.delays == [50.0, 50.0]
    assert sum(clock.delays) <= client.deadline


@pytest.mark.anyio
async def test_an_attempt_in_flight_is_cut_off_at_the_deadline() -> None:
    async def slow(request: httpx2.Request) -> httpx2.Response:
        await anyio.sleep(5)
        return httpx2.Response(200, json=TRACK_RESULT)

    client = DripClient(
        ApiKey(SK), base_url=BASE, transport=httpx2.MockTransport(slow), retry=RetryPolicy(deadline=0.05)
    )
    async with client:
        with anyio.fail_after(2):
            with pytest.raises(DripTimeoutError) as info:
                await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))
    assert info.value.idempotency_key is not None


def test_from_settings_derives_the_deadline_from_timeout_and_retries() -> None:
    settings = Settings.load({"DRIP_API_KEY": SK, "DRIP_TIMEOUT": "5", "DRIP_MAX_RETRIES": "2"})
    assert DripClient.from_settings(settings).deadline == 15.0 == settings.call_deadline
    assert DripClient(ApiKey(SK)).deadline == DEFAULT_CALL_DEADLINE == 120.0


# --- the key is masked in any case and in partial echoes ------------------------------------------------

UPPER_TAIL = SK.upper()[8:]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(SK.upper(), id="upper-case"),
        pytest.param("sk_test_" + "".join(c.swapcase() if i % 2 else c for i, c in enumerate(SK[8:])), id="mixed-case"),
        pytest.param(SK[:20], id="20-char-prefix"),
        pytest.param(SK[:-3], id="tail-cut"),
        pytest.param(SK[8:], id="body-without-prefix"),
        pytest.param(f"xx{SK}yy", id="glued-to-text"),
        pytest.param(SK, id="nothing-else"),
    ],
)
async def test_key_echoed_in_any_case_or_partly_is_masked_in_errors(echo: str, sleeper: SleepRecorder) -> None:
    body = {
        "error": echo,
        "code": "UNAUTHORIZED",
        "details": [{"path": "authorization", "message": f"Bearer {echo}"}],
        "received": {"header": f"BEARER {echo}"},
    }
    handler = Recorder((401, body))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))

    exc = info.value
    rendered = " ".join([str(exc), repr(exc), json.dumps(exc.to_dict()), json.dumps(exc.body), json.dumps(exc.details)])
    folded = rendered.lower()
    for start in range(8, len(SK) - 12 + 1):
        assert SK[start : start + 12].lower() not in folded
    assert "sk_test_…9f3a" in rendered


@pytest.mark.anyio
async def test_key_echoed_in_a_garbage_success_body_is_masked(sleeper: SleepRecorder) -> None:
    handler = Recorder((200, {"echo": SK.upper()}))
    async with make_client(handler, sleeper) as client:
        with pytest.raises(DripError) as info:
            await client.track_usage(customer_id="cus_1", meter="tokens", quantity=Decimal("1"))
    assert UPPER_TAIL not in json.dumps(info.value.body)
