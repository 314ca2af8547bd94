"""Per-turn usage from a RunResult: in the lash usage ledger, and read back like AdvancedSQLiteSession's."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.usage import InputTokensDetails, OutputTokensDetails, Usage
from lash_openai_agents import LashSession

import lash

from .conftest import ConfigFactory
from .scenario import TURNS, play


async def _usage_story(session: Any) -> tuple[Any, ...]:
    await play(session, TURNS[:3])
    return await session.get_turn_usage(), await session.get_turn_usage(1), await session.get_session_usage()


def test_turn_and_session_usage_match_advanced_sqlite_session(lash_config: ConfigFactory) -> None:
    async def both() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        reference = AdvancedSQLiteSession(session_id="s", create_tables=True)
        async with LashSession("s", config=lash_config()) as session:
            return await _usage_story(reference), await _usage_story(session)

    expected, got = asyncio.run(both())
    assert got == expected
    per_turn, first, whole = got
    assert [t["requests"] for t in per_turn] == [2, 1, 2], "a tool-calling turn makes two model requests"
    assert first["total_tokens"] == 300 and whole["total_turns"] == 3


def test_run_usage_goes_to_the_ledger_by_agent_and_model_in_disjoint_buckets(sqlite_config: dict[str, Any]) -> None:
    async def story() -> None:
        async with LashSession("s", config=sqlite_config) as session:
            results = await play(session, TURNS[:1])
            usage = results[0].context_wrapper.usage
            usage.add(
                Usage(
                    requests=1,
                    input_tokens=1000,
                    output_tokens=200,
                    total_tokens=1200,
                    input_tokens_details=InputTokensDetails(cached_tokens=600, cache_write_tokens=0),
                    output_tokens_details=OutputTokensDetails(reasoning_tokens=50),
                )
            )
            await session.store_run_usage(results[0], model="gpt-4.1")

    asyncio.run(story())
    with lash.open(sqlite_config) as handle:
        report = handle.session("s").usage_report()
    by_key = {(e.source, e.model): e.usage for e in report.entries}
    assert by_key[("weather", "gpt-4.1")] == lash.TokenUsage(
        input_tokens=240 + 400, output_tokens=60 + 150, cache_read_input_tokens=600, reasoning_output_tokens=50
    )
    assert by_key[("weather", "ScriptedModel")].total == 300, "play() stored the run under the model's class name"
    assert report.total.total == 300 + 1500, "lash's total equals the SDK's total_tokens"
