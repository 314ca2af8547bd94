"""A task cancelled mid-commit leaves the head old or new, and the session in step with it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any

import pytest
from lash_sqlite import SqliteBackend

import lash
import lash.aio
from tests.aio.conftest import lock_for, write_locked

RUNS = 200


def _stored(config: dict[str, Any], session_id: str) -> tuple[int | None, list[str]]:
    """The head revision and node ids in storage, read by a backend of its own."""
    backend = SqliteBackend(path=config["store"]["options"]["path"])
    try:
        store = backend.open_session(session_id, create=False)
        assert store is not None
        try:
            read = store.load_session()
        finally:
            store.close()
        return (None, []) if read is None else (read.head_revision, list(read.graph.nodes))
    finally:
        backend.close()


def test_cancelled_while_the_worker_writes_the_commit_lands_and_the_session_adopts_it(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            session.append_message("user", "first")
            await session.commit()
            node = session.append_message("user", "second")
            with write_locked(config, "s"):  # the worker blocks on SQLite's lock inside the commit
                task = asyncio.create_task(session.commit())
                await asyncio.sleep(0.2)
                task.cancel()
                await asyncio.sleep(0.05)
                assert not task.done(), "the cancellation must wait for the write in flight"
            try:
                await task
            except asyncio.CancelledError:
                pass
            else:
                raise AssertionError("the task was cancelled and must say so")
            assert session.head_revision == 2 and not session.dirty
            assert _stored(config, "s") == (2, list(session.graph.nodes))
            assert node in session.graph
            session.append_message("user", "third")
            assert (await session.commit()).head_revision == 3

    asyncio.run(scenario())


def test_timeout_around_a_blocked_commit_fires_after_the_write_lands(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            session.append_message("user", "slow")
            holder = lock_for(config, "s", 0.3)
            try:
                async with asyncio.timeout(0.05):
                    await session.commit()
            except TimeoutError:
                pass
            else:
                raise AssertionError("the commit waited for a 0.3 s lock and must time out")
            holder.join()
            assert session.head_revision == 1 == _stored(config, "s")[0]
            assert not session.dirty

    asyncio.run(scenario())


def test_commits_cancelled_at_random_points_never_half_write_or_lose_nodes(config):
    rng = random.Random(2024)
    outcomes: Counter[str] = Counter()

    async def scenario() -> None:
        async with lash.aio.open(config, max_workers=2) as handle:
            session = await handle.session("s")
            appended: list[str] = []
            for run in range(RUNS):
                before = session.head_revision
                appended.append(session.append_message("user", f"turn {run}", pad="x" * rng.randrange(4096)))
                session.record_usage("agent", "m", lash.TokenUsage(input_tokens=1))
                if run % 7 == 0:
                    session.tools.register({"name": f"tool_{run}"})
                task = asyncio.create_task(session.commit())
                delay = rng.choice([None, 0.0, rng.random() * 0.004])
                if delay is not None:  # None: cancelled before it starts
                    await asyncio.sleep(delay)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                cancelled = task.cancelled()
                revision, nodes = _stored(config, "s")
                assert revision in (before, (before or 0) + 1)
                assert session.head_revision == revision
                landed = revision != before
                outcomes[f"{'cancelled' if cancelled else 'finished'}, {'new' if landed else 'old'} head"] += 1
                assert nodes == [n for n in appended if n not in session._state.pending_node_ids]
            await session.commit()
            assert _stored(config, "s")[1] == appended == list(session.graph.nodes)
            assert session.usage_report().total.input_tokens == RUNS

    asyncio.run(scenario())
    print(dict(outcomes))
    assert sum(outcomes.values()) == RUNS


def test_open_cancelled_midway_leaves_nothing_half_open(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            for delay in (0, 0.0005, 0.001, 0.002, 0.005):
                task = asyncio.create_task(handle.session("s"))
                await asyncio.sleep(delay)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            assert handle._sessions == [s for s in handle._sessions if not s.closed]
            session = await handle.session("s")
            session.append_message("user", "after")
            await session.commit()
            assert (await session.meta()) is not None

    asyncio.run(scenario())


def test_cancelled_commit_that_conflicts_raises_cancelled_with_the_conflict_as_cause_and_writes_nothing(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as first, lash.aio.open(config) as second:
            a, b = await first.session("s"), await second.session("s")
            a.append_message("user", "from a")
            await a.commit()
            b.append_message("user", "from b")  # b has not seen a's commit: its own will conflict
            holder = lock_for(config, "s", 0.2)
            task = asyncio.create_task(b.commit())
            await asyncio.sleep(0.05)
            task.cancel()
            holder.join()
            with pytest.raises(asyncio.CancelledError) as cancelled:
                await task
            cause = cancelled.value.__cause__
            assert isinstance(cause, lash.HeadRevisionConflict)
            assert b.head_revision is None and b.dirty
            await b.refresh()
            assert (await b.commit()).head_revision == 2
            assert [m["content"] for m in b.messages()] == ["from a", "from b"]

    asyncio.run(scenario())
