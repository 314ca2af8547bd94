"""The Session protocol's promises, each checked against the SDK's own SQLiteSession where it has one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import SQLiteSession
from lash_openai_agents import LashSession

import lash
import lash.aio

from .conftest import ConfigFactory

ITEMS: list[Any] = [
    {"role": "user", "content": "Find order 42"},
    {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"id": 42}', "id": "fc1"},
    {"type": "function_call_output", "call_id": "c1", "output": "shipped"},
    {"role": "assistant", "content": "It shipped yesterday."},
    {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "user is happy"}]},
]


def test_get_items_limit_keeps_the_latest_n_in_order_like_sqlite_session(lash_config: ConfigFactory) -> None:
    async def both() -> None:
        reference = SQLiteSession("s")
        await reference.add_items(ITEMS)
        async with LashSession("s", config=lash_config()) as session:
            await session.add_items(ITEMS)
            for limit in (None, 0, 1, 3, len(ITEMS), 100, -1):
                assert await session.get_items(limit) == await reference.get_items(limit), limit
        async with LashSession("s2", config=lash_config(), session_settings={"limit": 2}) as limited:
            await limited.add_items(ITEMS)
            assert await limited.get_items() == ITEMS[-2:]
            assert await limited.get_items(4) == ITEMS[-4:]

    asyncio.run(both())


def test_pop_item_returns_the_newest_item_until_empty_like_sqlite_session(lash_config: ConfigFactory) -> None:
    async def both() -> None:
        reference = SQLiteSession("s")
        await reference.add_items(ITEMS)
        async with LashSession("s", config=lash_config()) as session:
            await session.add_items(ITEMS)
            for _ in range(len(ITEMS) + 1):
                assert await session.pop_item() == await reference.pop_item()
                assert await session.get_items() == await reference.get_items()
            await session.add_items(ITEMS[:1])
            assert await session.get_items() == ITEMS[:1]
            assert [b["branch_id"] for b in await session.list_branches()] == ["main"], "a pop is not a branch"

    asyncio.run(both())


def test_clear_session_removes_every_item_and_keeps_the_usage_ledger(lash_config: ConfigFactory) -> None:
    async def clear() -> None:
        async with LashSession("s", config=lash_config()) as session:
            await session.add_items(ITEMS)
            session.lash_session.record_usage("agent", "gpt-4.1", lash.TokenUsage(input_tokens=5))
            await session.lash_session.commit()
            await session.clear_session()
            assert await session.get_items() == []
            assert await session.pop_item() is None
            assert session.lash_session.usage_report().total.input_tokens == 5
            await session.add_items(ITEMS[:2])
            assert await session.get_items() == ITEMS[:2]

    asyncio.run(clear())


def test_each_add_items_call_is_one_commit_and_an_empty_one_is_none(lash_config: ConfigFactory) -> None:
    async def commits() -> None:
        async with LashSession("s", config=lash_config()) as session:
            await session.add_items(ITEMS[:2])
            first = session.lash_session.head_revision
            await session.add_items(ITEMS[2:])
            assert session.lash_session.head_revision == first + 1
            await session.add_items([])
            await session.get_items()
            assert session.lash_session.head_revision == first + 1

    asyncio.run(commits())


def test_stored_bodies_are_the_items_and_tool_items_read_well(sqlite_config: dict[str, Any]) -> None:
    async def store() -> None:
        async with LashSession("s", config=sqlite_config) as session:
            await session.add_items(ITEMS)

    asyncio.run(store())
    with lash.open(sqlite_config) as handle:
        bodies = handle.session("s").messages()
    assert bodies[0] == ITEMS[0] and bodies[3] == ITEMS[3], "message items are stored exactly as given"
    assert bodies[1]["role"] == "function_call" and bodies[1]["content"] == 'lookup({"id": 42})'
    assert (bodies[2]["role"], bodies[2]["tool_call_id"], bodies[2]["content"]) == ("tool", "c1", "shipped")
    assert bodies[4]["content"] == "user is happy"


class CommitsFirst:
    """A plugin that lets another writer commit to the session just before this handle's first commit."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.fired = False

    @lash.hookimpl
    def lash_snapshot_session(self, session: Any) -> None:
        if not self.fired:
            self.fired = True
            with lash.open(self.config) as other:
                theirs = other.session(session.session_id)
                theirs.append_message("user", "the other writer")
                theirs.commit()


def test_a_conflicting_writer_is_reloaded_and_the_change_redone_without_losing_either(
    sqlite_config: dict[str, Any],
) -> None:
    async def race() -> list[Any]:
        async with lash.aio.open(sqlite_config, plugins=[CommitsFirst(sqlite_config)]) as handle:
            session = LashSession("s", handle)
            await session.add_items([{"role": "user", "content": "mine"}])  # conflicts once, then lands
            assert session.lash_session.head_revision == 2
            return await session.get_items()

    assert asyncio.run(race()) == [
        {"role": "user", "content": "the other writer"},
        {"role": "user", "content": "mine"},
    ]


def test_a_cancelled_add_items_still_lands_whole(lash_config: ConfigFactory) -> None:
    async def cancel() -> None:
        async with LashSession("s", config=lash_config()) as session:
            await session.get_items()
            task = asyncio.ensure_future(session.add_items(ITEMS))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await session.get_items() == ITEMS

    asyncio.run(cancel())
