"""LangChain + drip-mcp, offline: `python examples/langchain_agent.py`.

The MCP SDK's stdio client starts `drip-mcp --sandbox`; each MCP tool becomes a LangChain
`StructuredTool` (its JSON schema as `args_schema`, its call as the coroutine). A scripted chat model
(standing in for a real one such as `ChatAnthropic`) emits the tool calls, and the usual LangChain tool
loop runs them: get-or-create a customer, track usage, record a run, check the balance.
Needs `pip install -e '.[examples]'`.

Why not `langchain-mcp-adapters` (`load_mcp_tools(session)` does the same conversion)? No release works
with the MCP SDK 2.x that drip-mcp needs: 0.3.2 requires `mcp<2`, and 0.3.1 fails at import
(`mcp.shared.context.RequestContext` is gone in 2.x). Once one does, `tools = await load_mcp_tools(session)`
replaces `to_langchain_tools` below and nothing else changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _scripted_agent import ScriptedPolicy, as_dict, drip_mcp_command, sandbox_env, show
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers with the next scripted tool call, read off the last tool result."""

    policy: Any

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            step = self.policy.next_call(last.name, as_dict(last.content))
        else:
            step = self.policy.first_call()
        if step is None:
            message = AIMessage(content=self.policy.final_answer())
        else:
            name, args = step
            message = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{len(messages)}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


async def to_langchain_tools(session: ClientSession) -> list[StructuredTool]:
    """Every MCP tool of the session as a LangChain tool whose result is the tool's JSON answer."""

    def make(name: str) -> Any:
        async def call(**arguments: Any) -> str:
            result = await session.call_tool(name, arguments)
            return "".join(getattr(block, "text", "") for block in result.content)

        return call

    return [
        StructuredTool(name=t.name, description=t.description or "", args_schema=t.input_schema, coroutine=make(t.name))
        for t in (await session.list_tools()).tools
    ]


async def main() -> None:
    with sandbox_env() as env:
        server = StdioServerParameters(command=drip_mcp_command(), args=["--sandbox"], env=env)
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in await to_langchain_tools(session)}
            print(f"langchain: {len(tools)} tools from drip-mcp --sandbox")
            model = ScriptedChatModel(policy=ScriptedPolicy(workflow="langchain_example"))
            messages: list[BaseMessage] = [HumanMessage("Bill example-user-42 for 1,200 tokens and record this run.")]
            while True:  # the standard tool loop: model -> tool calls -> tool messages -> model
                reply = await model.ainvoke(messages)
                messages.append(reply)
                if not reply.tool_calls:
                    break
                for call in reply.tool_calls:
                    show(call["name"], call["args"])
                    tool_message = await tools[call["name"]].ainvoke(call)
                    show(call["name"], call["args"], as_dict(tool_message.content))
                    messages.append(tool_message)
            print(reply.content)


if __name__ == "__main__":
    asyncio.run(main())
