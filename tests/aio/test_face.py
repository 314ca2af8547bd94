"""lash.aio mirrors the runtime API over the same session logic, and keeps blocking work off the loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import lash
import lash.aio
from lash.compaction import CompactionContext, CompactionResult
from lash.testing.aio import resumable_state

STORAGE_METHODS = {"commit", "compact", "refresh", "spawn_child", "prune", "meta", "close"}


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_async_face_has_every_public_name_of_the_sync_face_awaitable_exactly_where_storage_is_touched():
    for sync_cls, async_cls, storage in (
        (lash.Session, lash.aio.Session, STORAGE_METHODS),
        (lash.Lash, lash.aio.Lash, {"session", "sessions", "delete", "gc", "usage_of_children", "close"}),
    ):
        public = _public(sync_cls) - {"retention", "restore_plugins", "gather_plugin_tools", "gather_plugin_state"}
        public -= {"auto_gc_due"}
        assert public <= _public(async_cls), public - _public(async_cls)
        awaitable = {name for name in public if inspect.iscoroutinefunction(getattr(async_cls, name))}
        assert storage <= awaitable
        plain = {"append_message", "record_usage", "set_execution_state", "checkout", "messages", "usage_report"}
        assert not plain & awaitable


class Notes:
    """A plugin with state, snapshotted and restored, contributing one tool per note."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @lash.hookimpl
    def lash_snapshot_session(self, session: Any) -> Any:
        return {"notes": self.notes} if self.notes else None

    @lash.hookimpl
    def lash_restore_session(self, session: Any, snapshot: Any) -> None:
        self.notes = list(snapshot["notes"])

    @lash.hookimpl
    def lash_session_tools(self, session: Any) -> list[dict[str, Any]]:
        return [{"name": f"note_{n}"} for n in self.notes]


def _record(session: lash.session.SessionBase, notes: Notes, turn: int) -> None:
    session.append_message("user", f"question {turn}")
    session.append_message("assistant", f"answer {turn}")
    session.record_usage("agent", "m", lash.TokenUsage(input_tokens=turn, output_tokens=1))
    session.set_execution_state(bytes([turn]) * 32)
    notes.notes.append(f"n{turn}")


def test_sync_and_async_faces_store_the_same_session_and_resume_each_others(config):
    sync_notes, async_notes = Notes(), Notes()
    with lash.open(config, plugins=[sync_notes]) as handle:
        session = handle.session("sync")
        for turn in range(3):
            _record(session, sync_notes, turn)
            session.commit()

    async def write() -> None:
        async with lash.aio.open(config, plugins=[async_notes]) as handle:
            session = await handle.session("async")
            for turn in range(3):
                _record(session, async_notes, turn)
                await session.commit()

    asyncio.run(write())

    async def resume(session_id: str) -> tuple[Any, ...]:
        async with lash.aio.open(config, plugins=[Notes()]) as handle:
            return resumable_state(await handle.session(session_id))

    with lash.open(config, plugins=[Notes()]) as handle:
        by_sync = {sid: resumable_state(handle.session(sid)) for sid in ("sync", "async")}
    by_async = {sid: asyncio.run(resume(sid)) for sid in ("sync", "async")}
    assert by_sync == by_async

    def comparable(state: tuple[Any, ...]) -> tuple[Any, ...]:
        """Ids and timestamps differ between the two sessions; what was recorded must not."""
        revision, nodes, _, frames, _, config_, turn_state, tools, snapshot, execution, usage, messages = state
        return (
            revision,
            [n.body for n in nodes],
            len(frames),
            config_,
            turn_state,
            tools,
            snapshot,
            execution,
            usage,
            messages,
        )

    assert comparable(by_sync["sync"]) == comparable(by_sync["async"])


class ThreadRecordingCompactor:
    """Keeps the last message, noting which thread ran it."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def compact(self, ctx: CompactionContext) -> CompactionResult | None:
        self.threads.append(threading.current_thread())
        return CompactionResult(seed_messages=[dict(ctx.messages[-1])])


def test_storage_calls_and_the_compactor_run_in_the_worker_pool_not_on_the_loop_thread(config):
    compactor = ThreadRecordingCompactor()

    class Plugin:
        @lash.hookimpl
        def lash_register_compactors(self, register: Any) -> None:
            register("thread-recording", lambda options: compactor)

    async def scenario() -> None:
        loop_thread = threading.current_thread()
        async with lash.aio.open({**config, "compaction": {"strategy": "thread-recording"}}, plugins=[Plugin()]) as h:
            session = await h.session("s")
            session.append_message("user", "hello")
            storage = session.store.store.storage  # the sqlite storage under the worker-pool adapter
            original = storage.transaction
            threads: list[threading.Thread] = []

            def transaction(*, write: bool) -> Any:
                threads.append(threading.current_thread())
                return original(write=write)

            storage.transaction = transaction
            await session.commit()
            assert await session.compact() is True
            assert threads and loop_thread not in threads
            assert compactor.threads and loop_thread not in compactor.threads
            assert all(t.name.startswith("lash-aio") for t in threads + compactor.threads)

    asyncio.run(scenario())


def test_max_workers_bounds_the_worker_pool(config):
    async def scenario() -> int:
        async with lash.aio.open(config, max_workers=2) as handle:
            sessions = [await handle.session(f"s{i}") for i in range(6)]
            for session in sessions:
                session.append_message("user", "hi")
            await asyncio.gather(*(s.commit() for s in sessions))
            return handle._executor._max_workers

    assert asyncio.run(scenario()) == 2


def test_awaiting_open_gives_a_handle_closed_by_hand(config):
    async def scenario() -> None:
        handle = await lash.aio.open(config)
        session = await handle.session("s")
        session.append_message("user", "hi")
        assert (await session.commit()).head_revision == 1
        await handle.close()
        assert session.closed

    asyncio.run(scenario())


def test_active_path_session_loads_a_branch_point_before_checkout(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            root = session.append_message("user", "root")
            session.append_message("assistant", "first")
            await session.commit()
            session.checkout(root)
            session.append_message("assistant", "second")
            await session.commit()
        async with lash.aio.open(config) as handle:
            session = await handle.session("s", residency="active_path")
            first = next(
                n for n in (await session.store.load_session()).graph.nodes.values() if n.body.get("content") == "first"
            )
            await session.load_path(first.node_id)
            session.checkout(first.node_id)
            assert [m["content"] for m in session.messages()] == ["root", "first"]

    asyncio.run(scenario())
