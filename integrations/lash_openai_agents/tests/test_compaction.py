"""Compaction through lash's frames: run_compaction opens a frame, get_items returns it, history stays."""

from __future__ import annotations

import asyncio
from typing import Any

from lash_openai_agents import LashSession

import lash

from .conftest import ConfigFactory
from .scenario import TURNS, play


def _keep_last(config: dict[str, Any], n: int) -> dict[str, Any]:
    return {**config, "compaction": {"strategy": "keep-recent", "options": {"keep_last": n}}}


def test_runner_compacts_after_a_turn_with_auto_compact_and_keeps_the_full_history(
    lash_config: ConfigFactory,
) -> None:
    async def story() -> tuple[list[Any], list[Any], list[Any]]:
        async with LashSession("s", config=_keep_last(lash_config(), 3), auto_compact=True) as session:
            await play(session, TURNS)
            items = await session.get_items()
            turns = await session.get_conversation_turns()
            frames = session.lash_session.frames
            graph_items = [n for n in session.lash_session.graph.nodes.values() if n.kind == "message"]
            return items, turns, [frames, graph_items]

    items, turns, (frames, graph_items) = asyncio.run(story())
    assert len(frames) > 1 and frames[-1].reason == "compaction"
    assert len(items) <= 4, "the model sees the new frame only"
    assert items[0].get("type") != "function_call_output", "a frame never opens on a tool output without its call"
    assert [t["turn"] for t in turns] == [1, 2, 3, 4], "turn numbers survive compaction"
    assert len(graph_items) > 12, "every original item is still in the lash graph"


def test_runner_calls_do_not_compact_by_default_but_an_explicit_call_does(lash_config: ConfigFactory) -> None:
    async def story() -> tuple[int, int, int]:
        async with LashSession("s", config=_keep_last(lash_config(), 2)) as session:
            await play(session, TURNS[:2])
            before = len(await session.get_items())
            await session.run_compaction({"response_id": "resp-1", "force": False})
            unforced = len(await session.get_items())
            await session.run_compaction()
            return before, unforced, len(await session.get_items())

    assert asyncio.run(story()) == (6, 6, 2)


def test_branching_from_a_turn_before_the_compaction_travels_back_to_it(sqlite_config: dict[str, Any]) -> None:
    async def story() -> list[Any]:
        async with LashSession("s", config=_keep_last(sqlite_config, 2)) as session:
            await play(session, TURNS[:3])
            everything = await session.get_items()
            await session.run_compaction()
            await session.create_branch_from_turn(2, "before")
            assert await session.get_items() == everything[:4]
            return await session.get_items()

    assert [i.get("content") for i in asyncio.run(story())][:1] == [TURNS[0][0]]
    with lash.open(sqlite_config) as handle:
        assert handle.session("s").current_frame.reason == "initial"
