"""Pydantic AI + drip-mcp, offline: `python examples/pydantic_ai_agent.py`.

`MCPToolset` starts `drip-mcp --sandbox` over stdio and offers its tools to the agent. The model is a
`FunctionModel`: a function that plays the LLM, reading the last tool result and answering with the next
tool call, so `agent.run()` drives a real agent loop offline (swap in `"anthropic:claude-sonnet-4-5"` or
any model for the real thing): get-or-create a customer, track usage, record a run, check the balance.
Needs `pip install -e '.[examples]'`.
"""

from __future__ import annotations

import asyncio

from _scripted_agent import ScriptedPolicy, as_dict, drip_mcp_command, sandbox_env, show
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


def scripted_model(policy: ScriptedPolicy) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)] if isinstance(last, ModelRequest) else []
        if returns:
            result = as_dict(returns[-1].content)
            show(returns[-1].tool_name, {}, result)
            step = policy.next_call(returns[-1].tool_name, result)
        else:
            print(f"pydantic-ai: {len(info.function_tools)} tools from drip-mcp --sandbox")
            step = policy.first_call()
        if step is None:
            return ModelResponse(parts=[TextPart(policy.final_answer())])
        name, args = step
        show(name, args)
        return ModelResponse(parts=[ToolCallPart(tool_name=name, args=args, tool_call_id=f"call_{len(messages)}")])

    return FunctionModel(respond)


async def main() -> None:
    with sandbox_env() as env:
        drip = MCPToolset(StdioTransport(command=drip_mcp_command(), args=["--sandbox"], env=env))
        agent = Agent(scripted_model(ScriptedPolicy(workflow="pydantic_ai_example")), toolsets=[drip])
        async with agent:  # one drip-mcp process for the whole run
            result = await agent.run("Bill example-user-42 for 1,200 tokens and record this run.")
        print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
