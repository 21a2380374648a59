"""OpenAI Agents SDK + drip-mcp, offline: `python examples/openai_agents_agent.py`.

`MCPServerStdio` starts `drip-mcp --sandbox` and the agent gets its tools through the SDK's MCP
integration. The model is a small custom `Model` that plays the LLM (no network, no OpenAI key): it
reads the last tool output and returns the next function call, so `Runner.run()` drives the real agent
loop: get-or-create a customer, track usage, record a run, check the balance. For the real thing, drop
`model=` (or pass `"gpt-5"` and set OPENAI_API_KEY). Needs `pip install -e '.[examples]'`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from _scripted_agent import ScriptedPolicy, as_dict, drip_mcp_command, sandbox_env, show
from agents import Agent, Model, ModelResponse, Runner, Usage, set_tracing_disabled
from agents.mcp import MCPServerStdio
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText


class ScriptedModel(Model):
    """A `Model` whose next output is the scripted policy's next tool call (or its final answer)."""

    def __init__(self, policy: ScriptedPolicy) -> None:
        self.policy = policy

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any, *_: Any, **__: Any
    ) -> ModelResponse:
        items = [] if isinstance(input, str) else list(input)
        outputs = [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if outputs:
            names = {i["call_id"]: i["name"] for i in items if isinstance(i, dict) and i.get("type") == "function_call"}
            tool, result = names[outputs[-1]["call_id"]], as_dict(outputs[-1]["output"])
            show(tool, {}, result)
            step = self.policy.next_call(tool, result)
        else:
            print(f"openai-agents: {len(tools)} tools from drip-mcp --sandbox")
            step = self.policy.first_call()
        if step is None:
            text = ResponseOutputText(type="output_text", text=self.policy.final_answer(), annotations=[])
            out: Any = ResponseOutputMessage(
                id="msg_final", type="message", role="assistant", status="completed", content=[text]
            )
        else:
            name, args = step
            show(name, args)
            call_id = f"call_{len(items)}"
            out = ResponseFunctionToolCall(
                type="function_call", id=f"fc_{call_id}", call_id=call_id, name=name, arguments=json.dumps(args)
            )
        return ModelResponse(output=[out], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this scripted model does not stream")


async def main() -> None:
    set_tracing_disabled(True)  # tracing would upload spans to OpenAI
    with sandbox_env() as env:
        params = {"command": drip_mcp_command(), "args": ["--sandbox"], "env": env}
        async with MCPServerStdio(params=params, name="drip", cache_tools_list=True) as drip:
            agent = Agent(
                name="billing agent",
                instructions="Bill customers with the Drip tools.",
                mcp_servers=[drip],
                model=ScriptedModel(ScriptedPolicy(workflow="openai_agents_example")),
            )
            result = await Runner.run(agent, "Bill example-user-42 for 1,200 tokens and record this run.", max_turns=10)
        print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
