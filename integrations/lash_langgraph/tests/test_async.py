"""The ``a*`` methods on lash.aio: a graph run with ``ainvoke``, which handle serves which face, loops, cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata
from langgraph.types import Command
from lash_langgraph import LashSaver

import lash
import lash.aio

from .conftest import ConfigFactory
from .support_agent import REPLY, build, contents

THREAD = {"configurable": {"thread_id": "t"}}


async def aput(saver: LashSaver, thread: str, parent: dict | None, n: int) -> dict:
    """Put checkpoint number ``n`` of ``thread`` after ``parent`` (channel ``n`` changes each time)."""
    config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    checkpoint = generate_checkpoint(channel_values={"n": n}, channel_versions={"n": n})
    return await saver.aput(config, checkpoint, generate_metadata(step=n), {"n": n})


def test_graph_run_with_ainvoke_pauses_resumes_and_forks(lash_config: ConfigFactory) -> None:
    config = {"configurable": {"thread_id": "ticket-9"}}

    async def run() -> None:
        async with lash.aio.open(lash_config()) as handle:
            graph = build(LashSaver(handle))
            paused = await graph.ainvoke({"messages": [("user", "Refund order 42")]}, config)
            assert paused["__interrupt__"][0].value == {"question": "send this reply?", "draft": REPLY}
            done = await graph.ainvoke(Command(resume="approved"), config)
            assert contents(done) == ["Refund order 42", REPLY, "supervisor: approved"]

            history = [state async for state in graph.aget_state_history(config)]
            before_agent = next(s for s in history if s.next == ("agent",))
            await graph.ainvoke(None, before_agent.config)  # time travel: a fork from an earlier checkpoint
            forked = await graph.ainvoke(Command(resume="rejected"), config)
            assert contents(forked) == ["Refund order 42", REPLY, "supervisor: rejected"]
            approved = await graph.aget_state(history[0].config)
            assert contents(approved.values)[-1] == "supervisor: approved"

            session = await handle.session("langgraph:ticket-9")
            assert session.graph.orphaned_node_ids(), "the fork is a lash branch"

    asyncio.run(run())


def test_from_config_serves_both_faces_and_each_sees_the_others_commits(sqlite_config: dict) -> None:
    with LashSaver.from_config(sqlite_config) as saver:
        graph = build(saver)

        async def pause_then_resume_on_the_sync_face() -> tuple[dict, Any]:
            await graph.ainvoke({"messages": [("user", "Refund order 42")]}, THREAD)  # a* caches the session
            done = await asyncio.to_thread(graph.invoke, Command(resume="approved"), THREAD)  # sync commits
            return done, await saver.aget_tuple(THREAD)  # the cached session is behind: read anew

        done, latest = asyncio.run(pause_then_resume_on_the_sync_face())
        assert contents(done) == ["Refund order 42", REPLY, "supervisor: approved"]
        assert latest.checkpoint["channel_values"]["messages"][-1].content == "supervisor: approved"
        again = asyncio.run(saver.aget_tuple(THREAD))  # a new event loop: the saver opens lash.aio anew
        assert again.config == latest.config == graph.get_state(THREAD).config


def test_each_handle_serves_its_own_face_and_names_the_other() -> None:
    with lash.open({"store": {"backend": "memory"}}) as handle:
        sync_only = LashSaver(handle)
        with pytest.raises(lash.AsyncUsageError, match=r"lash\.aio\.open"):
            asyncio.run(sync_only.aget_tuple(THREAD))
        assert sync_only.get_tuple(THREAD) is None

    async def async_only() -> None:
        async with lash.aio.open({"store": {"backend": "memory"}}) as handle:
            saver = LashSaver(handle)
            stored = await aput(saver, "t", None, 1)
            with pytest.raises(lash.AsyncUsageError, match=r"lash\.Lash"):
                saver.get_tuple(THREAD)
            assert (await saver.aget_tuple(THREAD)).config == stored

    asyncio.run(async_only())


def test_close_inside_the_loop_is_refused_and_aclose_closes_for_good() -> None:
    async def run() -> None:
        saver = LashSaver.from_config({"store": {"backend": "memory"}})
        await aput(saver, "t", None, 1)
        with pytest.raises(lash.AsyncUsageError, match="aclose"):
            saver.close()
        assert await saver.aget_tuple(THREAD) is not None, "a refused close() changes nothing"
        await saver.aclose()
        with pytest.raises(lash.SessionClosedError):
            await saver.aget_tuple(THREAD)

    asyncio.run(run())


def test_concurrent_tasks_on_many_threads_all_keep_their_checkpoints(lash_config: ConfigFactory) -> None:
    async def agent(saver: LashSaver, thread: str) -> None:
        parent = None
        for n in range(1, 6):
            parent = await aput(saver, thread, parent, n)

    async def run() -> list[list[int]]:
        async with LashSaver.from_config(lash_config()) as saver:
            await asyncio.gather(*(agent(saver, f"agent-{i}") for i in range(8)))
            return [
                [
                    t.checkpoint["channel_values"]["n"]
                    async for t in saver.alist({"configurable": {"thread_id": f"agent-{i}"}})
                ]
                for i in range(8)
            ]

    assert asyncio.run(run()) == [[5, 4, 3, 2, 1]] * 8


def test_cancelled_put_leaves_the_thread_consistent_and_writable(sqlite_config: dict) -> None:
    async def run() -> tuple[list[int], int]:
        async with LashSaver.from_config(sqlite_config) as saver:
            first = await aput(saver, "t", None, 1)
            for delay in range(12):  # cancel at different points of the put (some finish first)
                task = asyncio.create_task(aput(saver, "t", first, 100 + delay))
                await asyncio.sleep(delay / 2000)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            after = await aput(saver, "t", first, 2)
            stored = [t.checkpoint["channel_values"]["n"] async for t in saver.alist(THREAD)]
            latest = await saver.aget_tuple(THREAD)
            return stored, latest.config == after and latest.checkpoint["channel_values"]["n"]

    stored, latest_n = asyncio.run(run())
    assert latest_n == 2
    assert stored[0] == 2 and stored[-1] == 1
    assert all(n == 1 or n == 2 or 100 <= n < 112 for n in stored), "each checkpoint whole or absent"
    with lash.open(sqlite_config) as handle:
        session = handle.session("langgraph:t")
        assert len(session.graph.nodes) == len(stored) + 1, "the thread node and one node per checkpoint"
