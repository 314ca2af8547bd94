"""A scripted weather agent (the SDK's ScriptedModel, no network) and the turns the tests play.

Run as a script it resumes a LashSession in a fresh process:
``python scenario.py CONFIG_JSON SESSION_ID FIRST_TURN LAST_TURN`` prints the items it found,
then plays the turns and prints the items after them (two JSON lines).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from agents import Agent, Runner, RunResult, function_tool, set_tracing_disabled
from agents.memory import Session
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

USAGE = Usage(requests=1, input_tokens=120, output_tokens=30, total_tokens=150)

# (question, the model's answers): a tool call answers with a function_call, then the final text.
TURNS: list[tuple[str, list[Any]]] = [
    ("What's the weather in Paris?", [function_call("get_weather", {"city": "Paris"}, call_id="call-1"), "Sunny."]),
    ("And should I take an umbrella?", ["No umbrella needed."]),
    ("What about Oslo?", [function_call("get_weather", {"city": "Oslo"}, call_id="call-2"), "Rain in Oslo."]),
    ("Thanks!", ["You're welcome."]),
]


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "rain" if city == "Oslo" else "sunny"


def agent_for(turns: Sequence[tuple[str, list[Any]]]) -> Agent[Any]:
    steps = [
        ModelStep(output=[assistant_message(a) if isinstance(a, str) else a], usage=USAGE)
        for _, answers in turns
        for a in answers
    ]
    return Agent(name="weather", instructions="Answer briefly.", model=ScriptedModel(steps), tools=[get_weather])


async def play(session: Session, turns: Sequence[tuple[str, list[Any]]]) -> list[RunResult]:
    """Run ``turns`` with the Runner against ``session``; stores each run's usage when the session can."""
    agent = agent_for(turns)
    results = []
    for question, _ in turns:
        result = await Runner.run(agent, question, session=session)
        if hasattr(session, "store_run_usage"):
            await session.store_run_usage(result)
        results.append(result)
    return results


async def _resume(config: dict[str, Any], session_id: str, first: int, last: int) -> None:
    from lash_openai_agents import LashSession

    async with LashSession(session_id, config=config) as session:
        print(json.dumps(await session.get_items()))
        await play(session, TURNS[first:last])
        print(json.dumps(await session.get_items()))


if __name__ == "__main__":
    set_tracing_disabled(True)
    asyncio.run(_resume(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
