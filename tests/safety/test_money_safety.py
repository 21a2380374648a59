"""Money safety: spend caps, previews, confirmation and the session ledger (issue 7)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import ElicitRequestParams, ElicitResult
from server_fixtures import result_payload, state_env

from drip_mcp.api.client import DripClient
from drip_mcp.errors import ConfirmationError
from drip_mcp.keys import ApiKey
from drip_mcp.safety.confirmation import ConfirmTokens
from drip_mcp.safety.guard import SpendGuard
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.tools.context import Services

KEY = "sk_test_money_safety_key"
PRICE = Decimal("0.001")  # the sandbox's seeded api_calls price


class Recording(httpx2.AsyncBaseTransport):
    """Delegates to the sandbox and remembers which paths were requested."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)

    def charges_sent(self) -> int:
        return self.paths.count("POST /v1/usage")


@dataclass
class Harness:
    sandbox: Sandbox
    transport: Recording
    client: Client
    customer_id: str
    services: Services
    clock: list[float] = field(default_factory=lambda: [1_000_000.0])

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        assert isinstance(result_payload(result), dict)
        return result_payload(result)

    def balance(self) -> Decimal:
        return self.sandbox.store.balance(self.customer_id)


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    mode: str = "auto",
    elicitation_callback: Callable[..., Any] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Harness]:
    settings = Settings.load(state_env(), api_key=KEY, sandbox=True, sandbox_db=tmp_path / "s.db", **settings_overrides)
    clock = [1_000_000.0]
    services = Services(
        guard=SpendGuard(settings.max_charge_usdc, settings.session_budget_usdc),
        confirm_tokens=ConfirmTokens(clock=lambda: clock[0]),
        secrets_dir=tmp_path / "secrets",
    )
    async with Sandbox(SandboxConfig(db_path=tmp_path / "s.db")) as sandbox:
        recording = Recording(sandbox.transport())
        async with DripClient(settings.api_key, base_url="http://sandbox.local/v1", transport=recording) as drip:
            server = build_server(settings, drip, services=services)
            kwargs: dict[str, Any] = {"mode": mode}
            if elicitation_callback is not None:
                kwargs["elicitation_callback"] = elicitation_callback
            async with Client(server, **kwargs) as client:
                created = await client.call_tool("drip_create_customer", {"external_customer_id": "cust-1"})
                assert isinstance(result_payload(created), dict)
                recording.paths.clear()
                yield Harness(sandbox, recording, client, result_payload(created)["customer"]["id"], services, clock)


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" in result, result
    error: dict[str, Any] = result["error"]
    return error


# --- caps ----------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("quantity", "allowed"), [(4, True), (5, True), (6, False)])
async def test_per_charge_cap_allows_up_to_the_limit_and_refuses_above_it(
    tmp_path: Path, quantity: int, allowed: bool
) -> None:
    async with harness(tmp_path, max_charge_usdc="0.005") as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=quantity)
        if allowed:
            assert result["status"] == "charged"
            assert result["amount_usdc"] == f"{PRICE * quantity:.6f}"
            assert h.transport.charges_sent() == 1
        else:
            err = error_of(result)
            assert err["code"] == "SPEND_CAP_EXCEEDED"
            assert err["cap"] == "per_charge"
            assert err["limit_usdc"] == "0.005000"
            assert err["requested_usdc"] == "0.006000"
            assert h.transport.charges_sent() == 0
            assert h.balance() == Decimal("100")


@pytest.mark.anyio
@pytest.mark.parametrize(("first", "second", "second_allowed"), [(9, 1, True), (10, 1, False), (9, 2, False)])
async def test_session_budget_counts_every_charge_and_refuses_the_one_that_would_overspend(
    tmp_path: Path, first: int, second: int, second_allowed: bool
) -> None:
    async with harness(tmp_path, session_budget_usdc="0.010") as h:
        ok = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=first)
        assert ok["status"] == "charged"
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=second)
        if second_allowed:
            assert result["status"] == "charged"
        else:
            err = error_of(result)
            assert err["code"] == "SPEND_CAP_EXCEEDED"
            assert err["cap"] == "session_budget"
            assert err["remaining_usdc"] == f"{Decimal('0.010') - PRICE * first:.6f}"
            assert h.transport.charges_sent() == 1


@pytest.mark.anyio
async def test_session_budget_at_exactly_the_limit_is_allowed(tmp_path: Path) -> None:
    async with harness(tmp_path, session_budget_usdc="0.010") as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=10)
        assert result["status"] == "charged"
        summary = await h.call("drip_session_summary")
        assert summary["budget_remaining_usdc"] == "0.000000"


@pytest.mark.anyio
@pytest.mark.parametrize(("quantity", "allowed"), [(99, True), (100, True), (101, False)])
async def test_max_quantity_bounds_usage_and_charges(tmp_path: Path, quantity: int, allowed: bool) -> None:
    async with harness(tmp_path, max_quantity="100") as h:
        track = await h.call("drip_track_usage", customer_id=h.customer_id, meter="api_calls", quantity=quantity)
        charge = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=quantity)
        batch = await h.call(
            "drip_track_usage_batch",
            events=[{"customer_id": h.customer_id, "meter": "api_calls", "quantity": quantity}],
        )
        if allowed:
            assert track["status"] == "recorded"
            assert charge["status"] == "charged"
            assert batch["recorded"] == 1
        else:
            for result, path in ((track, "quantity"), (charge, "quantity"), (batch, "events[0].quantity")):
                err = error_of(result)
                assert err["code"] == "QUANTITY_LIMIT_EXCEEDED"
                assert err["details"][0]["path"] == path
            assert h.transport.paths == []


@pytest.mark.anyio
async def test_unknown_price_with_a_cap_refuses_without_charging(tmp_path: Path) -> None:
    async with harness(tmp_path, max_charge_usdc="1") as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="no_such_meter", quantity=1)
        assert error_of(result)["code"] == "PRICE_UNKNOWN"
        assert h.transport.charges_sent() == 0


@pytest.mark.anyio
async def test_twenty_concurrent_charges_against_a_budget_for_ten_charge_exactly_ten(tmp_path: Path) -> None:
    async with harness(tmp_path, session_budget_usdc="0.010") as h:
        outcomes: list[str] = []

        async def one() -> None:
            result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=1)
            outcomes.append(result.get("status") or result["error"]["code"])

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one)
        assert sorted(outcomes) == ["SPEND_CAP_EXCEEDED"] * 10 + ["charged"] * 10
        assert h.transport.charges_sent() == 10
        assert h.sandbox.store.count_charges(h.customer_id) == 10
        assert h.balance() == Decimal("100") - Decimal("0.010")


@pytest.mark.anyio
async def test_refused_charge_releases_its_reservation(tmp_path: Path) -> None:
    async with harness(tmp_path, session_budget_usdc="0.010") as h:
        missing = await h.call("drip_charge", customer_id="no_such_customer", meter="api_calls", quantity=5)
        assert error_of(missing)["code"] == "NOT_FOUND"
        assert await h.services.guard.remaining(ApiKey(KEY).fingerprint) == Decimal("0.010")
        ok = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=10)
        assert ok["status"] == "charged"


# --- preview ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dry_run_previews_amount_and_balances_and_charges_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=250, dry_run=True)
        assert result["status"] == "preview"
        assert result["amount_usdc"] == "0.250000"
        assert result["balance_before_usdc"] == "100.000000"
        assert result["balance_after_usdc"] == "99.750000"
        assert h.transport.charges_sent() == 0
        assert h.sandbox.store.count_charges(h.customer_id) == 0
        assert h.balance() == Decimal("100")


# --- confirmation: elicitation ---------------------------------------------------------------------


def elicitation(action: str, confirm: bool = True) -> tuple[Callable[..., Any], list[str]]:
    asked: list[str] = []

    async def callback(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"confirm": confirm} if action == "accept" else None)

    return callback, asked


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_confirmed_elicitation_charges_after_asking_with_the_amount(tmp_path: Path, mode: str) -> None:
    callback, asked = elicitation("accept")
    async with harness(tmp_path, mode=mode, elicitation_callback=callback, confirm_charges=True) as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=3)
        assert result["status"] == "charged"
        assert len(asked) == 1
        assert "0.003000 USDC" in asked[0]
        assert h.customer_id in asked[0]
        assert h.balance() == Decimal("99.997")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_declined_elicitation_charges_nothing(tmp_path: Path, mode: str, action: str, confirm: bool) -> None:
    callback, asked = elicitation(action, confirm)
    async with harness(tmp_path, mode=mode, elicitation_callback=callback, confirm_charges=True) as h:
        result = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=3)
        assert error_of(result)["code"] == "CONFIRMATION_DECLINED"
        assert asked
        assert h.transport.charges_sent() == 0
        assert h.balance() == Decimal("100")


# --- confirmation: tokens for clients without elicitation -----------------------------------------


@pytest.mark.anyio
async def test_client_without_elicitation_gets_a_preview_and_token_then_charges_once(tmp_path: Path) -> None:
    async with harness(tmp_path, confirm_charges=True) as h:
        args = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        first = await h.call("drip_charge", **args)
        assert first["status"] == "confirmation_required"
        assert first["amount_usdc"] == "0.007000"
        assert first["balance_after_usdc"] == "99.993000"
        assert h.transport.charges_sent() == 0

        second = await h.call("drip_charge", **args, confirm_token=first["confirm_token"])
        assert second["status"] == "charged"
        assert second["idempotency_key"] == first["idempotency_key"]
        assert h.balance() == Decimal("99.993")

        reused = await h.call("drip_charge", **args, confirm_token=first["confirm_token"])
        assert error_of(reused)["code"] == "CONFIRMATION_REUSED"
        assert h.transport.charges_sent() == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tampered",
    [
        {"quantity": 8},
        {"meter": "tokens"},
        {"metadata": {"model": "other"}},
        {"idempotency_key": "chg_something_else"},
    ],
)
async def test_confirm_token_for_other_arguments_is_refused(tmp_path: Path, tampered: dict[str, Any]) -> None:
    async with harness(tmp_path, confirm_charges=True) as h:
        args: dict[str, Any] = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        first = await h.call("drip_charge", **args)
        result = await h.call("drip_charge", **{**args, **tampered}, confirm_token=first["confirm_token"])
        assert error_of(result)["code"] == "CONFIRMATION_MISMATCH"
        assert h.transport.charges_sent() == 0


@pytest.mark.anyio
async def test_a_call_refused_for_its_idempotency_key_does_not_use_up_the_confirm_token(tmp_path: Path) -> None:
    async with harness(tmp_path, confirm_charges=True) as h:
        args: dict[str, Any] = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        first = await h.call("drip_charge", **args)
        token = first["confirm_token"]
        wrong = await h.call("drip_charge", **args, idempotency_key="chg_something_else", confirm_token=token)
        assert error_of(wrong)["code"] == "CONFIRMATION_MISMATCH"
        right = await h.call("drip_charge", **args, idempotency_key=first["idempotency_key"], confirm_token=token)
        assert right["status"] == "charged"
        assert h.transport.charges_sent() == 1


@pytest.mark.anyio
async def test_a_charge_over_the_session_budget_does_not_use_up_the_confirm_token(tmp_path: Path) -> None:
    async with harness(tmp_path, confirm_charges=True, session_budget_usdc="0.010") as h:
        args: dict[str, Any] = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        first, other = await h.call("drip_charge", **args), await h.call("drip_charge", **args)
        assert (await h.call("drip_charge", **args, confirm_token=other["confirm_token"]))["status"] == "charged"
        refused = await h.call("drip_charge", **args, confirm_token=first["confirm_token"])
        assert error_of(refused)["code"] == "SPEND_CAP_EXCEEDED"
        assert h.transport.charges_sent() == 1
        h.services.guard.budget = Decimal("1")  # the operator's budget allows it now: the token still works
        assert (await h.call("drip_charge", **args, confirm_token=first["confirm_token"]))["status"] == "charged"
        assert h.transport.charges_sent() == 2


@pytest.mark.anyio
async def test_six_concurrent_redeems_of_one_confirm_token_charge_exactly_once(tmp_path: Path) -> None:
    async with harness(tmp_path, confirm_charges=True) as h:
        args: dict[str, Any] = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        token = (await h.call("drip_charge", **args))["confirm_token"]
        results: list[dict[str, Any]] = []

        async def redeem() -> None:
            results.append(await h.call("drip_charge", **args, confirm_token=token))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(redeem)
        assert sorted(r.get("status") or r["error"]["code"] for r in results) == ["CONFIRMATION_REUSED"] * 5 + [
            "charged"
        ]
        assert h.transport.charges_sent() == 1
        assert h.balance() == Decimal("99.993")


@pytest.mark.anyio
async def test_checking_a_confirm_token_does_not_consume_it_and_consuming_it_twice_is_refused() -> None:
    tokens = ConfirmTokens()
    args = {"customer_id": "c", "quantity": "1"}
    issued = await tokens.issue(args, "chg_1")
    with pytest.raises(ConfirmationError) as mismatch:
        await tokens.check(issued.token, args, "chg_2")
    assert mismatch.value.code == "CONFIRMATION_MISMATCH"
    confirmed = await tokens.check(issued.token, args)
    assert await tokens.check(issued.token, args, "chg_1") == confirmed
    await tokens.consume(confirmed)
    with pytest.raises(ConfirmationError) as reused:
        await tokens.consume(confirmed)
    assert reused.value.code == "CONFIRMATION_REUSED"
    with pytest.raises(ConfirmationError) as checked:
        await tokens.check(issued.token, args)
    assert checked.value.code == "CONFIRMATION_REUSED"
    await tokens.release(confirmed)
    assert await tokens.redeem(issued.token, args) == "chg_1"


@pytest.mark.anyio
async def test_expired_or_forged_confirm_token_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path, confirm_charges=True) as h:
        args = {"customer_id": h.customer_id, "meter": "api_calls", "quantity": 7}
        first = await h.call("drip_charge", **args)
        forged = first["confirm_token"][:-2] + ("00" if not first["confirm_token"].endswith("00") else "11")
        assert error_of(await h.call("drip_charge", **args, confirm_token=forged))["code"] == "CONFIRMATION_INVALID"
        h.clock[0] += 301
        expired = await h.call("drip_charge", **args, confirm_token=first["confirm_token"])
        assert error_of(expired)["code"] == "CONFIRMATION_EXPIRED"
        assert h.transport.charges_sent() == 0


# --- ledger ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_session_ledger_totals_match_the_sandbox_charges(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        for quantity in (1, 2, 3):
            await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=quantity)
        await h.call("drip_charge", customer_id=h.customer_id, meter="tokens", quantity=1000)
        await h.call("drip_track_usage", customer_id=h.customer_id, meter="api_calls", quantity=5)
        failed = await h.call("drip_charge", customer_id=h.customer_id, meter="api_calls", quantity=10**9)
        assert error_of(failed)["code"] == "PAYMENT_REQUIRED"

        summary = await h.call("drip_session_summary")
        totals = summary["totals_by_customer"][h.customer_id]
        assert Decimal(totals["charged_usdc"]) == h.sandbox.store.charges_total(h.customer_id)
        assert totals["charges"] == h.sandbox.store.count_charges(h.customer_id) == 4
        assert totals["usage_events"] == 1
        assert totals["failed"] == 1
        assert Decimal(summary["total_charged_usdc"]) == Decimal("0.016")
        charge_entries = [e for e in summary["entries"] if e["kind"] == "charge" and e["outcome"] == "charged"]
        assert all(e["idempotency_key"] and e["at"] for e in charge_entries)

        resource = await h.client.read_resource("drip://session/ledger")
        text = resource.contents[0].text  # type: ignore[union-attr]
        assert json.loads(text)["total_charged_usdc"] == summary["total_charged_usdc"]


@pytest.mark.anyio
async def test_live_key_ping_says_money_moves_and_lists_caps(tmp_path: Path) -> None:
    settings = Settings.load(state_env(), api_key="pk_live_realmoney123", max_charge_usdc="2")
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json={"status": "healthy"}))
    assert settings.api_key is not None
    drip = DripClient(settings.api_key, transport=transport)
    async with drip, Client(build_server(settings, drip)) as client:
        result = await client.call_tool("drip_ping", {})
    ping = result_payload(result)
    assert isinstance(ping, dict)
    assert ping["key_mode"] == "live"
    assert any("real money" in w and "2.000000 USDC per charge" in w for w in ping["warnings"])
    assert ping["spend_caps"] == ["max 2.000000 USDC per charge"]


def test_live_key_banner_says_money_moves_and_names_the_caps() -> None:
    from drip_mcp.server import banner

    settings = Settings.load(state_env(), api_key="sk_live_realmoney123", session_budget_usdc="25")
    assert settings.api_key is not None
    line = banner(settings, build_server(settings, DripClient(settings.api_key)), "stdio")
    assert "LIVE key: drip_charge, drip_charge_async, drip_refund_charge move real money" in line
    assert "session budget 25.000000 USDC" in line
    assert "realmoney123" not in line
    assert "\n" not in line
