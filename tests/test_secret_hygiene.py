"""Secret hygiene: a DEBUG session never shows the API key, and whsec_ secrets only where asked (issue 6).

`run_session` drives every tool in the registry through one in-process MCP
client, happy and error paths, with logging set up as the CLI does it
(``configure_logging("DEBUG", secrets=[key])``), an outbox attached to the
client, and an upstream that can go down, answer 500 or answer 401 while
echoing the key (and the ``Authorization`` header) in its error body. It keeps
every surface a secret could leak to: each tool result (text and structured),
every log record (raw, before any masking) and the rendered stderr, the
outbox and sandbox SQLite files (with their WAL), ``tools.json``, the webhook
secret files and the webhook deliveries. The tests then search all of it.

The subprocess test does the same for ``python -m drip_mcp --sandbox
--log-level DEBUG`` over stdio, scanning the server's stderr.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import stat
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp_types import TextContent
from server_fixtures import result_payload, state_env

from drip_mcp.api.client import DripClient
from drip_mcp.api.durable import OutboxSender
from drip_mcp.api.outbox import Outbox, outbox_scope
from drip_mcp.api.retrying import RetryPolicy
from drip_mcp.keys import mask_key
from drip_mcp.logs import configure_logging
from drip_mcp.manifest import render_manifest
from drip_mcp.sandbox import Sandbox, SandboxConfig
from drip_mcp.server import build_server
from drip_mcp.settings import Settings
from drip_mcp.tools import TOOLS_BY_NAME

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
KEY = "sk_test_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
MASKED = mask_key(KEY)
HOOK_URL = "http://127.0.0.1:9/drip"  # loopback: the sandbox refuses other webhook hosts by default
MAX_RETRIES = 2
DEADLINE_S = 30


# --- the upstream: the sandbox, or a fault that echoes what it was sent -----------------------------


class Upstream(httpx2.AsyncBaseTransport):
    """The sandbox while ``mode == "up"``; otherwise an `httpx2.MockTransport` failing as `mode` says."""

    def __init__(self, sandbox: httpx2.AsyncBaseTransport) -> None:
        self._sandbox = sandbox
        self._fault = httpx2.MockTransport(self._answer)
        self.mode = "up"
        self.fault_requests = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.mode == "up":
            return await self._sandbox.handle_async_request(request)
        self.fault_requests += 1
        return await self._fault.handle_async_request(request)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        auth = request.headers.get("authorization", "")
        assert auth == f"Bearer {KEY}"  # the fault really has the key to echo
        if self.mode == "down":
            raise httpx2.ConnectError("connection refused", request=request)
        if self.mode == "401":
            body = {"error": {"code": "UNAUTHORIZED", "message": f"Invalid API key {KEY}", "received": auth}}
            return httpx2.Response(401, json=body, headers={"X-Request-Id": "req_401"})
        if self.mode == "500":
            body = {"error": {"code": "INTERNAL", "message": f"upstream failed for {auth}", "key": KEY}}
            return httpx2.Response(500, json=body)
        if self.mode == "500-text":
            return httpx2.Response(500, text=f"<html>proxy error; request carried {auth}</html>")
        raise AssertionError(f"unknown mode {self.mode}")


def text_of(result: Any) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def _no_sleep(_: float) -> None:
    return None


# --- capture -------------------------------------------------------------------------------------------


class RawRecords(logging.Handler):
    """Every record, rendered before any handler's filter can rewrite it: message, exception and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._fmt = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        parts = [f"{record.name} {record.levelname}: {record.getMessage()}"]
        if record.exc_info:
            parts.append(self._fmt.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        self.lines.append("\n".join(parts))


@dataclass
class Call:
    name: str
    arguments: dict[str, Any]
    text: str
    structured: str
    is_error: bool

    @property
    def surface(self) -> str:
        return f"{self.text}\n{self.structured}"

    @property
    def revealed(self) -> bool:
        return bool(self.arguments.get("reveal_secret"))


@dataclass
class Session:
    calls: list[Call] = field(default_factory=list)
    raw_log: list[str] = field(default_factory=list)
    stderr: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # label -> bytes (outbox, sandbox DB, WAL files)
    secret_files: dict[str, Path] = field(default_factory=dict)  # webhook id -> its secret file
    whsec: dict[str, str] = field(default_factory=dict)  # label -> the secret the sandbox holds after that call
    deliveries: list[str] = field(default_factory=list)
    outbox_pending: int = 0
    outbox_dead: int = 0
    outbox_errors: list[str] = field(default_factory=list)
    fault_requests_500: int = 0

    def results_with(self, needle: str) -> list[Call]:
        return [c for c in self.calls if needle in c.surface]

    def result(self, name: str, **match: Any) -> Call:
        found = [c for c in self.calls if c.name == name and all(c.arguments.get(k) == v for k, v in match.items())]
        assert found, (name, match)
        return found[-1]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def capture_logging(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, RawRecords]:
    """`configure_logging` as the CLI calls it (stderr -> a buffer), plus a raw record capture in front."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("DEBUG", secrets=[KEY])
    raw = RawRecords()
    logging.getLogger().handlers.insert(0, raw)  # before the masking handler: sees records unmasked
    return stderr, raw


def read_db(path: Path) -> dict[str, bytes]:
    out = {}
    for suffix in ("", "-wal", "-journal"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            out[p.name] = p.read_bytes()
    return out


async def run_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    session = Session()
    stderr, raw = capture_logging(monkeypatch)
    db, outbox_path = tmp_path / "sandbox.db", tmp_path / "outbox.db"
    settings = Settings.load(state_env(), api_key=KEY, sandbox=True, sandbox_db=db)
    assert settings.api_key is not None

    def deliver(request: httpx2.Request) -> httpx2.Response:
        session.deliveries.append(f"{request.headers}\n{request.content.decode('utf-8', 'replace')}")
        return httpx2.Response(200, json={"received": True})

    with anyio.fail_after(DEADLINE_S):
        async with Sandbox(SandboxConfig(db_path=db), delivery_transport=httpx2.MockTransport(deliver)) as sandbox:
            upstream = Upstream(sandbox.transport())
            with Outbox(outbox_path) as outbox:
                client = DripClient(
                    settings.api_key,
                    base_url="http://sandbox.local/v1",
                    transport=upstream,
                    retry=RetryPolicy(max_retries=MAX_RETRIES),
                    sleep=_no_sleep,
                    durable=OutboxSender(outbox, outbox_scope(f"sandbox:{db.resolve()}", settings.api_key)),
                )
                server = build_server(settings, client)
                async with client, Client(server) as mcp:
                    await _drive(mcp, session, upstream, sandbox)
                counts = outbox.counts()
                session.outbox_pending, session.outbox_dead = counts.pending, counts.dead
                session.outbox_errors = [str(e.summary()) for e in outbox.entries(limit=100)]
                session.files.update({f"open {k}": v for k, v in read_db(outbox_path).items()})
                session.files.update({f"open {k}": v for k, v in read_db(db).items()})
        session.files.update({f"closed {k}": v for k, v in read_db(outbox_path).items()})
        session.files.update({f"closed {k}": v for k, v in read_db(db).items()})
    session.raw_log = raw.lines
    session.stderr = stderr.getvalue()
    session.secret_files = {p.stem: p for p in (Path(state_env()["DRIP_MCP_STATE_DIR"]) / "webhook-secrets").glob("*")}
    return session


async def _drive(mcp: Client, session: Session, upstream: Upstream, sandbox: Sandbox) -> None:
    async def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        args = dict(arguments or {})
        result = await mcp.call_tool(name, args)
        assert len(result.content) == 1
        structured = result_payload(result) or {}
        session.calls.append(
            Call(name, args, text_of(result), json.dumps(structured, ensure_ascii=False), result.is_error)
        )
        return structured

    async def ok(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        out = await call(name, arguments)
        assert not session.calls[-1].is_error, (name, out)
        return out

    async def error(name: str, arguments: dict[str, Any] | None, code: str) -> dict[str, Any]:
        out = await call(name, arguments)
        assert session.calls[-1].is_error, (name, out)
        err: dict[str, Any] = out["error"]
        assert err["code"] == code, (name, out)
        return err

    leaky = {"api_key": KEY, "note": f"called with {KEY}"}  # metadata an agent should not send: redacted

    # --- status, customers, usage, billing --------------------------------------------------------
    await ok("drip_ping")
    customer = (await ok("drip_create_customer", {"external_customer_id": "hygiene-user", "metadata": leaky}))[
        "customer"
    ]["id"]
    await ok("drip_get_customer", {"customer_id": customer})
    await ok("drip_list_customers", {})
    await ok("drip_list_meters", {})
    await ok("drip_estimate_cost", {"items": [{"meter": "api_calls", "quantity": 10}]})
    await ok(
        "drip_estimate_from_usage",
        {"period_start": "2020-01-01T00:00:00Z", "period_end": "2099-01-01T00:00:00Z", "customer_id": customer},
    )
    await ok("drip_track_usage", {"customer_id": customer, "meter": "tokens", "quantity": 5, "metadata": leaky})
    batch = await ok(
        "drip_track_usage_batch", {"events": [{"customer_id": customer, "meter": "api_calls", "quantity": 1}]}
    )
    await ok("drip_get_batch", {"batch_id": batch["batch_id"]})
    await ok("drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 2, "dry_run": True})
    charge = await ok("drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 2, "metadata": leaky})
    await ok("drip_get_charge", {"charge_id": charge["charge_id"]})
    await ok("drip_list_charges", {"customer_id": customer})
    await ok("drip_get_balance", {"customer_id": customer})
    await ok("drip_checkout", {"amount_cents": 500, "return_url": "https://example.com/done", "customer_id": customer})

    # --- runs -----------------------------------------------------------------------------------------
    await ok("drip_create_workflow", {"name": "Hygiene", "slug": "hygiene"})
    await ok("drip_list_workflows", {})
    run = (await ok("drip_start_run", {"customer_id": customer, "workflow": "hygiene", "metadata": leaky}))["run_id"]
    await ok("drip_emit_event", {"run_id": run, "event_type": "llm_call", "quantity": 3, "metadata": leaky})
    await ok("drip_emit_events_batch", {"run_id": run, "events": [{"event_type": "tool_call", "apiKey": KEY}]})
    await ok("drip_end_run", {"run_id": run, "status": "COMPLETED"})
    await ok("drip_get_run", {"run_id": run})
    await ok("drip_get_run_timeline", {"run_id": run})
    await ok("drip_record_run", {"customer_id": customer, "workflow": "hygiene", "events": [{"event_type": "x"}]})

    # --- webhooks: create and rotate, with and without reveal_secret ----------------------------------
    first = (await ok("drip_create_webhook", {"url": HOOK_URL, "events": ["*"]}))["webhook"]["id"]
    session.whsec["create"] = sandbox.store.webhook(first)["secret"]
    await ok("drip_list_webhooks", {})
    await ok("drip_get_webhook", {"webhook_id": first})
    await ok("drip_test_webhook", {"webhook_id": first})
    await ok("drip_rotate_webhook_secret", {"webhook_id": first})
    session.whsec["rotate"] = sandbox.store.webhook(first)["secret"]
    await ok("drip_rotate_webhook_secret", {"webhook_id": first, "reveal_secret": True})
    session.whsec["rotate+reveal"] = sandbox.store.webhook(first)["secret"]
    second = (await ok("drip_create_webhook", {"url": HOOK_URL, "events": ["*"], "reveal_secret": True}))["webhook"][
        "id"
    ]
    session.whsec["create+reveal"] = sandbox.store.webhook(second)["secret"]
    await ok("drip_test_webhook", {"webhook_id": second})
    doomed = (await ok("drip_create_webhook", {"url": HOOK_URL, "events": ["charge.succeeded"]}))["webhook"]["id"]
    session.whsec["create, then delete"] = sandbox.store.webhook(doomed)["secret"]
    await ok("drip_delete_webhook", {"webhook_id": doomed})

    # --- customers, caps, refunds, async charges, events, runs and webhook deliveries -----------------------
    await ok("drip_update_customer", {"customer_id": customer, "status": "ACTIVE", "metadata": leaky})
    await ok("drip_provision_customer", {"customer_id": customer})
    await ok("drip_sync_customer_balance", {"customer_id": customer})
    cap = {"customer_id": customer, "cap_type": "DAILY_CHARGE_LIMIT", "limit_value": 50}
    cap_id = (await ok("drip_set_customer_spending_cap", cap))["id"]
    await ok("drip_get_customer_spending_caps", {"customer_id": customer})
    await ok("drip_remove_customer_spending_cap", {"customer_id": customer, "cap_id": cap_id})
    await ok("drip_refund_charge", {"charge_id": charge["charge_id"], "reason": "customer_request", "note": "hygiene"})
    await ok("drip_charge_async", {"customer_id": customer, "meter": "api_calls", "quantity": 1, "metadata": leaky})
    await ok("drip_list_usage", {"customer_id": customer})
    events = (await ok("drip_list_events", {"customer_id": customer}))["data"]
    await ok("drip_get_event", {"event_id": events[0]["id"]})
    await ok("drip_get_event_trace", {"event_id": events[0]["id"]})
    traced = await ok("drip_start_run", {"customer_id": customer, "workflow": "hygiene", "correlation_id": "hyg"})
    await ok("drip_emit_event", {"run_id": traced["run_id"], "event_type": "traced", "metadata": leaky})
    await ok("drip_get_trace", {"correlation_id": "hyg"})
    await ok("drip_list_runs", {"customer_id": customer})
    await ok("drip_get_workflow", {"workflow_id": traced["workflow_id"]})
    await ok("drip_update_workflow", {"workflow_id": traced["workflow_id"], "description": "hygiene runs"})
    await ok("drip_update_webhook", {"webhook_id": first, "description": "hygiene"})
    await ok("drip_list_webhook_deliveries", {"webhook_id": first})
    [delivery] = sandbox.store.webhook_deliveries(first, limit=1)
    await ok("drip_get_webhook_delivery", {"webhook_id": first, "delivery_id": delivery["id"]})
    await ok("drip_retry_webhook_delivery", {"webhook_id": first, "delivery_id": delivery["id"]})
    # --- entitlements, subscriptions, contracts -------------------------------------------------------------
    plan = (await ok("drip_create_entitlement_plan", {"name": "Hygiene", "slug": "hygiene"}))["id"]
    await ok("drip_list_entitlement_plans", {})
    await ok("drip_update_entitlement_plan", {"plan_id": plan, "description": "plan"})
    rule_args = {"feature_key": "api_calls", "limit_type": "COUNT", "period": "DAILY", "limit_value": 5}
    rule = (await ok("drip_add_entitlement_rule", {"plan_id": plan, **rule_args}))["id"]
    await ok("drip_list_entitlement_rules", {"plan_id": plan})
    await ok("drip_update_entitlement_rule", {"rule_id": rule, "limit_value": 6})
    await ok("drip_assign_customer_entitlement", {"customer_id": customer, "plan_id": plan})
    await ok("drip_check_entitlement", {"customer_id": customer, "feature_key": "api_calls"})
    await ok("drip_get_customer_entitlement", {"customer_id": customer})
    await ok("drip_get_entitlement_plan", {"plan_id": plan})
    await ok("drip_delete_entitlement_rule", {"rule_id": rule})
    await ok("drip_delete_entitlement_plan", {"plan_id": plan})
    sub_args = {"customer_id": customer, "name": "Pro", "interval": "MONTHLY", "price_usdc": 9, "metadata": leaky}
    sub = (await ok("drip_create_subscription", sub_args))["id"]
    await ok("drip_list_subscriptions", {"customer_id": customer})
    await ok("drip_get_subscription", {"subscription_id": sub})
    await ok("drip_update_subscription", {"subscription_id": sub, "metadata": leaky})
    await ok("drip_pause_subscription", {"subscription_id": sub})
    await ok("drip_resume_subscription", {"subscription_id": sub})
    await ok("drip_cancel_subscription", {"subscription_id": sub, "immediate": True})
    contract_args = {"customer_id": customer, "name": "Hygiene", "start_date": "2020-01-01", "metadata": leaky}
    contract = (await ok("drip_create_contract", contract_args))["id"]
    await ok("drip_list_contracts", {"customer_id": customer})
    await ok("drip_get_contract", {"contract_id": contract})
    await ok("drip_update_contract", {"contract_id": contract, "metadata": leaky})
    await ok("drip_add_contract_override", {"contract_id": contract, "unit_type": "tokens", "unit_price_usd": 0.001})
    await ok("drip_remove_contract_override", {"contract_id": contract, "unit_type": "tokens"})
    await ok("drip_delete_contract", {"contract_id": contract})

    # --- error paths: unknown ids, invalid input ---------------------------------------------------------
    await error("drip_get_customer", {"customer_id": "cus_missing"}, "NOT_FOUND")
    await error("drip_get_run", {"run_id": "run_missing"}, "NOT_FOUND")
    await error("drip_get_charge", {"charge_id": "chg_missing"}, "NOT_FOUND")
    await error("drip_get_webhook", {"webhook_id": "wh_missing"}, "NOT_FOUND")
    await error("drip_rotate_webhook_secret", {"webhook_id": "wh_missing", "reveal_secret": True}, "NOT_FOUND")
    await error("drip_track_usage", {"customer_id": customer, "meter": "tokens", "quantity": 0}, "VALIDATION_ERROR")
    await error("drip_charge", {"customer_id": f"{KEY}!", "meter": "api_calls", "quantity": 1}, "VALIDATION_ERROR")
    await error("drip_get_balance", {"customer_id": customer, "api_key": KEY[:12]}, "VALIDATION_ERROR")
    await error(
        "drip_create_webhook", {"url": "ftp://nope", "events": ["*"], "reveal_secret": True}, "VALIDATION_ERROR"
    )

    # --- a 401 that echoes the key and the Authorization header -------------------------------------------
    upstream.mode = "401"
    await error("drip_get_balance", {"customer_id": customer}, "UNAUTHORIZED")
    await error("drip_end_run", {"run_id": run, "status": "FAILED"}, "UNAUTHORIZED")  # durable: a dead letter
    # --- 500s after retries (JSON and text bodies echoing the key) -------------------------------------------
    upstream.mode, upstream.fault_requests = "500", 0
    failed = await error("drip_list_customers", {}, "SERVER_ERROR")
    assert failed["retryable"] is True
    session.fault_requests_500 = upstream.fault_requests
    await ok("drip_emit_event", {"run_id": run, "event_type": "queued_by_500", "metadata": leaky})  # queued
    upstream.mode = "500-text"
    await call("drip_get_customer", {"customer_id": customer})
    # --- upstream down: one write queued in the outbox ---------------------------------------------------
    upstream.mode = "down"
    queued = await ok(
        "drip_track_usage", {"customer_id": customer, "meter": "tokens", "quantity": 7, "metadata": leaky}
    )
    assert queued["status"] == "queued"
    await ok("drip_ping")
    upstream.mode = "up"
    await ok("drip_session_summary")
    await ok("drip_find_operations", {"query": "webhook secret"})
    await ok("drip_get_or_create_customer", {"external_customer_id": "hygiene-user", "metadata": leaky})
    await ok("drip_call_operation", {"operation": "drip_get_webhook", "arguments": {"webhook_id": second}})
    await ok("drip_ping")


def fail_message(secret_label: str, surface: str, excerpt: str) -> str:
    return f"{secret_label} found in {surface}: …{excerpt}…"


def excerpt_around(haystack: str, needle: str) -> str:
    i = haystack.find(needle)
    return haystack[max(0, i - 120) : i + len(needle) + 40]


@pytest.fixture
async def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> Session:
    return await run_session(tmp_path, monkeypatch)


# --- the API key ----------------------------------------------------------------------------------------


async def test_the_session_exercised_every_tool_and_every_failure_mode(session: Session) -> None:
    assert {c.name for c in session.calls} == set(TOOLS_BY_NAME)
    codes = {json.loads(c.structured)["error"]["code"] for c in session.calls if c.is_error}
    assert {"NOT_FOUND", "VALIDATION_ERROR", "UNAUTHORIZED", "SERVER_ERROR"} <= codes
    assert session.fault_requests_500 == MAX_RETRIES + 1
    assert session.outbox_pending == 2  # the write queued while down and the one queued by the 500s
    assert session.outbox_dead == 1  # drip_end_run refused by the 401
    assert any("DEBUG" in line for line in session.stderr.splitlines())
    assert len(session.raw_log) > 50
    assert session.deliveries  # drip_test_webhook delivered (to the mock endpoint)


async def test_the_api_key_appears_in_no_tool_result(session: Session) -> None:
    leaks = session.results_with(KEY)
    assert not leaks, [(c.name, c.arguments, excerpt_around(c.surface, KEY)) for c in leaks]
    ping = json.loads(session.result("drip_ping").structured)
    assert ping["key"] == MASKED


async def test_the_api_key_appears_in_no_log_record_and_not_on_stderr(session: Session) -> None:
    for line in session.raw_log:
        assert KEY not in line, fail_message("the API key", "a log record", excerpt_around(line, KEY))
    assert KEY not in session.stderr, fail_message("the API key", "stderr", excerpt_around(session.stderr, KEY))


async def test_the_api_key_is_stored_in_no_file(session: Session) -> None:
    raw = KEY.encode()
    assert {"open outbox.db", "open sandbox.db", "closed outbox.db", "closed sandbox.db"} <= set(session.files)
    for label, data in session.files.items():
        assert raw not in data, f"the API key is in {label}"
    assert session.secret_files
    for path in session.secret_files.values():
        assert raw not in path.read_bytes(), f"the API key is in {path}"
    manifest = (REPO / "tools.json").read_text(encoding="utf-8")
    assert KEY not in manifest
    assert KEY not in render_manifest()


async def test_the_api_key_is_not_in_outbox_errors_or_webhook_deliveries(session: Session) -> None:
    assert session.outbox_errors
    for entry in session.outbox_errors:
        assert KEY not in entry, entry
    for delivery in session.deliveries:
        assert KEY not in delivery, delivery


# --- webhook signing secrets ----------------------------------------------------------------------------


async def test_a_whsec_secret_is_in_results_only_when_reveal_secret_was_asked(session: Session) -> None:
    assert len(session.whsec) == 5
    assert len(set(session.whsec.values())) == 5
    for label, secret in session.whsec.items():
        assert secret.startswith("whsec_")
        shown_in = session.results_with(secret)
        if label.endswith("+reveal"):
            assert len(shown_in) == 1, (label, [c.name for c in shown_in])
            assert shown_in[0].revealed
            assert json.loads(shown_in[0].structured)["secret"] == secret
        else:
            assert shown_in == [], (label, [(c.name, c.arguments) for c in shown_in])
    for call in session.calls:
        if call.name in ("drip_create_webhook", "drip_rotate_webhook_secret") and not call.is_error:
            out = json.loads(call.structured)
            assert (out["secret"] is not None) == call.revealed, (call.name, call.arguments)
            assert out["secret_masked"].startswith("whsec_")
            assert "…" in out["secret_masked"]


async def test_a_whsec_secret_is_in_no_log_record_file_or_manifest(session: Session) -> None:
    manifest = (REPO / "tools.json").read_text(encoding="utf-8") + render_manifest()
    for label, secret in session.whsec.items():
        for line in session.raw_log:
            assert secret not in line, fail_message(f"whsec ({label})", "a log record", excerpt_around(line, secret))
        assert secret not in session.stderr, fail_message(f"whsec ({label})", "stderr", secret[:10])
        assert secret not in manifest
        for name, data in session.files.items():
            if "outbox" in name:
                assert secret.encode() not in data, f"whsec ({label}) is in {name}"
        for delivery in session.deliveries:
            assert secret not in delivery, f"whsec ({label}) was sent in a webhook delivery"


async def test_each_webhook_secret_file_is_private_and_holds_only_the_current_secret(session: Session) -> None:
    current = {session.whsec["rotate+reveal"], session.whsec["create+reveal"]}
    assert len(session.secret_files) == 2  # the deleted webhook's file is gone
    held = set()
    for path in session.secret_files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        held.add(path.read_text(encoding="utf-8").strip())
    assert held == current
    assert not list(path.parent.glob(".*.tmp"))


# --- the masking filter, when a library logs the key ------------------------------------------------------


def _library_logs_the_key() -> None:
    logging.getLogger("httpx2").debug("request headers: %s", {"authorization": f"Bearer {KEY}"})
    logging.getLogger("some.library").warning("retrying with key %s", KEY)
    logging.getLogger("some.library").info(f"inline {KEY}")


def _library_raises_with_the_key() -> None:
    try:
        raise RuntimeError(f"auth failed for Bearer {KEY}")
    except RuntimeError:
        logging.getLogger("some.library").exception("request failed")


def test_the_masking_filter_masks_a_key_that_a_library_logs_in_a_message(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    stderr, raw = capture_logging(monkeypatch)
    _library_logs_the_key()
    out = stderr.getvalue()
    assert sum(KEY in line for line in raw.lines) == 3  # the library did log it
    assert KEY not in out
    assert out.count(MASKED) == 3


def test_the_masking_filter_masks_a_key_in_a_logged_exception_traceback(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    stderr, raw = capture_logging(monkeypatch)
    _library_raises_with_the_key()
    assert any(KEY in line for line in raw.lines)  # the traceback did carry it
    out = stderr.getvalue()
    assert "request failed" in out
    assert "RuntimeError: auth failed for Bearer" in out
    assert KEY not in out, fail_message("the API key", "stderr (exception text)", excerpt_around(out, KEY))


# --- the real process over stdio ------------------------------------------------------------------------------


def _stdio_params(tmp_path: Path) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env.update(
        DRIP_API_KEY=KEY,
        DRIP_MCP_STATE_DIR=str(tmp_path / "state"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "drip_mcp", "--sandbox", "--sandbox-db", str(tmp_path / "sandbox.db"), "--log-level", "DEBUG"],
        env=env,
        cwd=str(REPO),
    )


@pytest.mark.slow
async def test_a_debug_stdio_server_never_writes_the_key_or_a_revealed_secret_to_stderr(tmp_path: Path) -> None:
    errlog_path = tmp_path / "stderr.log"
    texts: list[str] = []
    with errlog_path.open("w+", encoding="utf-8") as errlog, anyio.fail_after(DEADLINE_S):
        async with Client(stdio_client(_stdio_params(tmp_path), errlog=errlog), read_timeout_seconds=10) as client:

            async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
                result = await client.call_tool(name, arguments)
                texts.append(text_of(result))
                return result_payload(result) or {}

            ping = await call("drip_ping", {})
            customer = (await call("drip_create_customer", {"external_customer_id": "stdio", "metadata": {"k": KEY}}))[
                "customer"
            ]["id"]
            await call("drip_track_usage", {"customer_id": customer, "meter": "tokens", "quantity": 5})
            await call("drip_charge", {"customer_id": customer, "meter": "api_calls", "quantity": 0})
            await call("drip_get_customer", {"customer_id": "cus_missing"})
            revealed = await call("drip_create_webhook", {"url": HOOK_URL, "events": ["*"], "reveal_secret": True})
    stderr = errlog_path.read_text(encoding="utf-8")
    secret = revealed["secret"]
    assert ping["key"] == MASKED
    assert secret.startswith("whsec_")
    assert MASKED in stderr  # the banner: stderr was captured, and shows the key masked
    assert " DEBUG " in stderr  # DEBUG logging was on
    assert KEY not in stderr, fail_message("the API key", "stderr", excerpt_around(stderr, KEY))
    assert secret not in stderr, fail_message("the revealed whsec", "stderr", excerpt_around(stderr, secret))
    assert not [t for t in texts if KEY in t]
    db = (tmp_path / "sandbox.db").read_bytes() + b"".join(read_db(tmp_path / "sandbox.db").values())
    assert KEY.encode() not in db
