"""Prompts and completions end to end, both protocol eras; the completion cache with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import MCPError
from mcp_types import CompletionArgument, PromptReference, ResourceTemplateReference
from server_fixtures import Harness, open_harness

from drip_mcp.features.completions import CACHE_TTL_S, Completer

pytestmark = pytest.mark.anyio

PROMPTS = {"bill_agent_run", "reconcile_customer_balance", "set_up_agent_metering"}
CUSTOMER_TEMPLATE = ResourceTemplateReference(uri="drip://customers/{customer_id}")


async def test_prompts_are_listed_with_their_arguments(h: Harness) -> None:
    prompts = {p.name: p for p in (await h.mcp.list_prompts()).prompts}
    assert set(prompts) == PROMPTS
    args = {a.name: a for a in prompts["bill_agent_run"].arguments or []}
    assert set(args) == {"customer_id", "run_id", "meter"}
    assert all(a.required and a.description for a in args.values())


async def test_bill_agent_run_prompt_names_the_tools_in_order(h: Harness) -> None:
    result = await h.mcp.get_prompt("bill_agent_run", {"customer_id": "cus_1", "run_id": "run_1", "meter": "tokens"})
    [message] = result.messages
    assert message.role == "user"
    text = message.content.text  # type: ignore[union-attr]
    order = ["drip_get_run_timeline", "drip_list_meters", "dry_run: true", "idempotency_key", "drip_get_charge"]
    positions = [text.index(step) for step in order]
    assert positions == sorted(positions)
    assert "cus_1" in text
    assert "run_1" in text


async def test_read_only_operator_hides_and_refuses_the_billing_prompt(mode: str, tmp_path: Path) -> None:
    async with open_harness(tmp_path, mode, read_only=True) as h:
        names = {p.name for p in (await h.mcp.list_prompts()).prompts}
        assert names == {"reconcile_customer_balance"}
        with pytest.raises(MCPError):
            await h.mcp.get_prompt("bill_agent_run", {"customer_id": "c", "run_id": "r", "meter": "m"})


async def test_meter_completes_from_the_pricing_plans_for_templates_and_prompts(h: Harness) -> None:
    prompt = PromptReference(name="bill_agent_run")
    result = await h.mcp.complete(prompt, {"name": "meter", "value": "api"})
    assert result.completion.values == ["api_calls"]
    everything = await h.mcp.complete(prompt, {"name": "meter", "value": ""})
    assert "api_calls" in everything.completion.values
    assert everything.completion.total == len(everything.completion.values)


async def test_customer_id_completes_by_id_or_external_id_prefix(h: Harness) -> None:
    alice = await h.new_customer("alice-1")
    bob = await h.new_customer("bob-1")
    by_external = await h.mcp.complete(CUSTOMER_TEMPLATE, {"name": "customer_id", "value": "ALI"})
    assert by_external.completion.values == [alice]
    by_id = await h.mcp.complete(CUSTOMER_TEMPLATE, {"name": "customer_id", "value": bob[:-1]})
    assert bob in by_id.completion.values


async def test_workflow_completes_from_the_workflows(h: Harness) -> None:
    customer_id = await h.new_customer()
    await h.new_run(customer_id, workflow="research_agent")
    prompt = PromptReference(name="set_up_agent_metering")
    result = await h.mcp.complete(prompt, {"name": "workflow", "value": "res"})
    assert result.completion.values == ["research_agent"]


async def test_completions_are_cached_per_key_so_a_second_lookup_sends_nothing(h: Harness) -> None:
    await h.new_customer("carol-1")
    await h.mcp.complete(CUSTOMER_TEMPLATE, {"name": "customer_id", "value": "c"})
    await h.new_customer("carla-1")
    again = await h.mcp.complete(CUSTOMER_TEMPLATE, {"name": "customer_id", "value": "c"})
    assert len(h.sent_to("GET", "/v1/customers")) == 1
    assert len(again.completion.values) == 1  # the cached list, from before carla


async def test_completion_cache_expires_after_its_ttl(h: Harness) -> None:
    now = [1000.0]
    completer = Completer(lambda: h.server.completer._resolve_client(), clock=lambda: now[0])
    argument = CompletionArgument(name="customer_id", value="d")
    await h.new_customer("dan-1")
    assert len((await completer.complete(CUSTOMER_TEMPLATE, argument, None)).values) == 1
    await h.new_customer("dora-1")
    now[0] += CACHE_TTL_S - 1
    assert len((await completer.complete(CUSTOMER_TEMPLATE, argument, None)).values) == 1
    now[0] += 2
    assert len((await completer.complete(CUSTOMER_TEMPLATE, argument, None)).values) == 2


async def test_unknown_argument_completes_to_nothing(h: Harness) -> None:
    result = await h.mcp.complete(CUSTOMER_TEMPLATE, {"name": "nonsense", "value": ""})
    assert result.completion.values == []
    assert h.sent == []
