import asyncio

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.usage import Usage
from lash_openai_agents import LashSession


@function_tool
def order_status(order_id: int) -> str:
    """Look an order up."""
    return f"order {order_id} shipped yesterday"


# A scripted stand-in for the model, so that this runs offline. With an OpenAI key, delete
# these lines and set_tracing_disabled(), and pass model="gpt-4.1" to the Agent instead.
set_tracing_disabled(True)
model = ScriptedModel(
    [
        [function_call("order_status", {"order_id": 42}, call_id="call-1")],
        [assistant_message("Order 42 shipped yesterday.")],
        [assistant_message("It should arrive tomorrow.")],
        [assistant_message("Order 42 is cancelled.")],
    ],
    default_usage=Usage(requests=1, input_tokens=50, output_tokens=10, total_tokens=60),
)
agent = Agent(name="support", instructions="Help with orders.", model=model, tools=[order_status])


async def main() -> None:
    async with LashSession("support-42") as session:  # lash.toml, [tool.lash], or SQLite under .lash/
        result = await Runner.run(agent, "Where is order 42?", session=session)
        await session.store_run_usage(result)  # lash usage ledger + per-turn usage
        result = await Runner.run(agent, "When will it arrive?", session=session)
        print(result.final_output)

        # Redo turn 2 differently: a lash branch that starts just before it.
        await session.create_branch_from_turn(2, "cancel")
        result = await Runner.run(agent, "Cancel it instead.", session=session)
        print(result.final_output)
        print([branch["branch_id"] for branch in await session.list_branches()])
        print(await session.get_session_usage())


asyncio.run(main())
