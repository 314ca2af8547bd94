"""Branching from a turn, switching and listing branches: the same items as the SDK's AdvancedSQLiteSession."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from lash_openai_agents import BranchError, LashSession

import lash

from .conftest import ConfigFactory
from .scenario import TURNS, play

ALTERNATIVE = [("Actually, what about Rome?", ["Warm in Rome."])]


async def _branch_story(session: Any) -> dict[str, Any]:
    """Two turns, a branch from turn 2 with another question, then back to main."""
    await play(session, TURNS[:2])
    name = await session.create_branch_from_turn(2, "rome")
    seen = {"at_branch": await session.get_items()}
    await play(session, ALTERNATIVE)
    seen["rome"] = await session.get_items()
    await session.switch_to_branch("main")
    seen["main"] = await session.get_items()
    seen["branches"] = [
        (b["branch_id"], b["message_count"], b["user_turns"], b["is_current"]) for b in await session.list_branches()
    ]
    seen["turns"] = [(t["turn"], t["full_content"]) for t in await session.get_conversation_turns("rome")]
    seen["name"] = name
    return seen


def test_branch_from_turn_switch_and_list_match_advanced_sqlite_session(lash_config: ConfigFactory) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        reference = AdvancedSQLiteSession(session_id="s", create_tables=True)
        async with LashSession("s", config=lash_config()) as session:
            return await _branch_story(reference), await _branch_story(session)

    expected, got = asyncio.run(both())
    assert got["at_branch"] == expected["at_branch"] == (expected["main"][:4])
    assert got == expected


def test_a_resumed_session_continues_on_the_branch_it_was_on(sqlite_config: dict[str, Any]) -> None:
    async def branch_then_resume() -> tuple[list[Any], list[Any]]:
        async with LashSession("s", config=sqlite_config) as session:
            await play(session, TURNS[:2])
            await session.create_branch_from_turn(1, "fresh-start")
            await play(session, ALTERNATIVE)
            before = await session.get_items()
        async with LashSession("s", config=sqlite_config) as resumed:
            return before, await resumed.get_items()

    before, after = asyncio.run(branch_then_resume())
    assert after == before and before[0]["content"] == ALTERNATIVE[0][0], "turn 1's branch starts empty"


def test_branch_errors_are_value_errors_naming_the_problem(lash_config: ConfigFactory) -> None:
    async def misuse() -> None:
        async with LashSession("s", config=lash_config()) as session:
            await play(session, TURNS[:1])
            with pytest.raises(BranchError, match="Turn 5 does not contain a user message in branch 'main'"):
                await session.create_branch_from_turn(5)
            with pytest.raises(BranchError, match="cannot be empty"):
                await session.create_branch_from_turn(1, " ")
            auto = await session.create_branch_from_turn(1)
            assert auto.startswith("branch_from_turn_1_")
            await session.switch_to_branch("main")
            for used in (auto, "main"):
                with pytest.raises(BranchError, match="already been used"):
                    await session.create_branch_from_turn(1, used)
            with pytest.raises(ValueError, match="'nope' does not exist"):
                await session.switch_to_branch("nope")

    asyncio.run(misuse())


def test_branches_are_lash_branches_of_one_session(sqlite_config: dict[str, Any]) -> None:
    async def story() -> None:
        async with LashSession("s", config=sqlite_config) as session:
            await play(session, TURNS[:2])
            await session.create_branch_from_turn(2, "rome")
            await play(session, ALTERNATIVE)

    asyncio.run(story())
    with lash.open(sqlite_config) as handle:
        graph = handle.session("s").graph
    leaves = set(graph.nodes) - {n.parent_id for n in graph.nodes.values()}
    assert len(leaves) == 2 and graph.leaf_node_id in leaves
    assert graph.orphaned_node_ids(), "main's second turn is off the active path"


def test_popping_a_branch_back_into_shared_history_leaves_the_other_branch_whole(lash_config: ConfigFactory) -> None:
    async def story() -> tuple[list[Any], list[Any], list[Any], list[str]]:
        async with LashSession("s", config=lash_config()) as session:
            await play(session, TURNS[:2])
            main = await session.get_items()
            await session.create_branch_from_turn(2, "short")
            popped = [await session.pop_item() for _ in range(3)]  # into the items both branches share
            assert popped == main[:4][::-1][:3]
            short = await session.get_items()
            await session.switch_to_branch("main")
            names = [b["branch_id"] for b in await session.list_branches()]
            return main, short, await session.get_items(), names

    main, short, main_again, names = asyncio.run(story())
    assert short == main[:1] and main_again == main and names == ["main", "short"]
