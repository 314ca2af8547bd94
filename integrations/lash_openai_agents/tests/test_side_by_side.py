"""The SDK's Runner, with tool calls, against LashSession and against the SDK's own SQLiteSession: the same items."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import SQLiteSession
from lash_openai_agents import LashSession

from .conftest import ConfigFactory
from .scenario import TURNS, play


async def _history_both_ways(config: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    reference = SQLiteSession("weather")
    await play(reference, TURNS)
    async with LashSession("weather", config=config) as session:
        await play(session, TURNS)
        return await reference.get_items(), await session.get_items()


def test_runner_history_with_tool_calls_equals_sqlite_session_item_for_item(lash_config: ConfigFactory) -> None:
    expected, got = asyncio.run(_history_both_ways(lash_config()))
    assert [item.get("type", "message") for item in got] == [
        "message", "function_call", "function_call_output", "message",
        "message", "message",
        "message", "function_call", "function_call_output", "message",
        "message", "message",
    ]  # fmt: skip
    assert got == expected
