""":class:`AsyncBackendTests`: the storage contract again, through ``lash.aio``'s async face.

Add it beside :class:`~lash.testing.BackendTests` to a backend's test class; it uses the
same ``backend`` fixture and hooks::

    class TestMyBackend(BackendTests, AsyncBackendTests):
        ...

It runs two kinds of case:

* every store- and backend-level contract case of :class:`~lash.testing.BackendTests`
  (``test_async_<name>``), with ``store``/``writer`` (or, for backend-level cases,
  ``backend``) going through the backend's :class:`~lash.store.AsyncBackend`: the native
  one when the backend has ``async_backend(executor)``, else lash.aio's worker-pool adapter. The
  test bodies stay synchronous: each call is run on an event loop in a helper thread;
* runtime cases through ``lash.aio.open()``: resume equality with the sync face, conflict
  and refresh, children, prune, delete, GC, and commits cancelled at random points.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs
import pytest

import lash
import lash.aio
from lash.blobs import BlobStore
from lash.hookspecs import hookimpl
from lash.model import (
    Commit,
    CommitResult,
    FullGraph,
    GcReport,
    Head,
    Node,
    ReadScope,
    SessionInfo,
    SessionMeta,
    SessionRead,
    TokenUsage,
    VacuumReport,
)
from lash.store import ANY_REVISION, AsyncBackend, AsyncSessionStore, Backend, ExpectedRevision
from lash.testing.base import SESSION_ID, BackendFixtures
from lash.testing.builders import SessionWriter
from lash.testing.commits import CommitTests
from lash.testing.maintenance import MaintenanceTests
from lash.testing.reads import ReadTests
from lash.testing.sessions import SessionTests

T = TypeVar("T")

BACKEND_NAME = "lash-testing-under-test"
"""The name the backend under test is registered as for the ``lash.aio.open()`` cases."""

CANCELLATION_RUNS = 30
"""Commits cancelled at a random point per test run."""


# --- sync calls through the async face -------------------------------------------------------


class LoopThread:
    """An event loop running in a helper thread, so synchronous test code can await on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lash-testing-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class BlockingSessionStore:
    """A :class:`~lash.store.SessionStore` whose every call is an awaited :class:`AsyncSessionStore` call."""

    def __init__(self, store: AsyncSessionStore, loop: LoopThread) -> None:
        self.async_store = store
        self.session_id = store.session_id
        self._loop = loop

    @property
    def blobs(self) -> BlobStore:
        return self.async_store.blobs

    def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        return self._loop.run(self.async_store.load_session(scope))

    def load_head(self) -> Head | None:
        return self._loop.run(self.async_store.load_head())

    def load_node(self, node_id: str) -> Node | None:
        return self._loop.run(self.async_store.load_node(node_id))

    def commit(self, commit: Commit) -> CommitResult:
        return self._loop.run(self.async_store.commit(commit))

    def save_meta(self, meta: SessionMeta) -> None:
        self._loop.run(self.async_store.save_meta(meta))

    def load_meta(self) -> SessionMeta | None:
        return self._loop.run(self.async_store.load_meta())

    def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        return self._loop.run(self.async_store.tombstone_nodes(node_ids))

    def vacuum(self) -> VacuumReport:
        return self._loop.run(self.async_store.vacuum())

    def gc_unreachable(self) -> GcReport:
        return self._loop.run(self.async_store.gc_unreachable())

    def close(self) -> None:
        self._loop.run(self.async_store.close())


class BlockingBackend:
    """A :class:`~lash.store.Backend` whose every call is an awaited :class:`AsyncBackend` call."""

    def __init__(self, backend: AsyncBackend, loop: LoopThread) -> None:
        self.async_backend = backend
        self._loop = loop

    @property
    def blobs(self) -> BlobStore | None:
        return self.async_backend.blobs

    def open_session(self, session_id: str, *, create: bool = True) -> BlockingSessionStore | None:
        store = self._loop.run(self.async_backend.open_session(session_id, create=create))
        return None if store is None else BlockingSessionStore(store, self._loop)

    def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        return self._loop.run(
            self.async_backend.delete_session(session_id, expected_head_revision=expected_head_revision)
        )

    def list_sessions(self) -> list[SessionInfo]:
        return self._loop.run(self.async_backend.list_sessions())

    def gc(self) -> GcReport:
        return self._loop.run(self.async_backend.gc())

    def close(self) -> None:
        """The test's backend fixture closes the backend itself."""


@attrs.define
class AsyncFace:
    """The backend under test seen through its async face, callable from synchronous tests."""

    backend: BlockingBackend
    loop: LoopThread

    def open_store(self, session_id: str) -> BlockingSessionStore:
        store = self.backend.open_session(session_id)
        assert store is not None, "AsyncBackend.open_session(create=True) must return a store"
        return store


def _through_async_face(test: Callable[..., None]) -> Callable[..., None]:
    """``test`` with its ``store``/``writer`` (else its ``backend``) replaced by the async face's."""
    signature = inspect.signature(test)
    names = set(signature.parameters)
    on_store = bool(names & {"store", "writer"})

    @functools.wraps(test)
    def variant(self: Any, async_face: AsyncFace, **fixtures: Any) -> None:
        if on_store:
            store = async_face.open_store(SESSION_ID)
            fixtures.update(
                {name: value for name, value in (("store", store), ("writer", SessionWriter(store))) if name in names}
            )
        else:
            fixtures["backend"] = async_face.backend
        try:
            test(self, **fixtures)
        finally:
            if on_store:
                store.close()

    self_param, *rest = signature.parameters.values()
    face_param = inspect.Parameter("async_face", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    variant.__signature__ = signature.replace(parameters=[self_param, face_param, *rest])  # type: ignore[attr-defined]
    return variant


def _contract_cases() -> dict[str, Any]:
    """Each contract case as ``test_async_<name>``, with the helper methods the cases call."""
    cases: dict[str, Any] = {}
    for suite in (CommitTests, ReadTests, MaintenanceTests, SessionTests):
        for name, value in vars(suite).items():
            if name.startswith("test_") and callable(value):
                cases[f"test_async_{name.removeprefix('test_')}"] = _through_async_face(value)
            elif name.startswith("_") and not name.startswith("__") and callable(value):
                cases[name] = value
    return cases


# --- lash.aio over the backend under test ----------------------------------------------------


class _Borrowed:
    """The backend under test, lent to a handle: closing the handle leaves it to the fixture."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def close(self) -> None:
        pass


class _UnderTest:
    """Registers one backend instance as :data:`BACKEND_NAME`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def lash_register_backends(self, register: Callable[..., None]) -> None:
        register(BACKEND_NAME, lambda options: _Borrowed(self.backend))


def open_async(backend: Backend, **sections: Any) -> lash.aio.Opening:
    """``lash.aio.open()`` over ``backend`` (``sections`` add config tables)."""
    return lash.aio.open({"store": {"backend": BACKEND_NAME}, **sections}, plugins=[_UnderTest(backend)])


def open_sync(backend: Backend) -> lash.Lash:
    """``lash.open()`` over ``backend``."""
    return lash.open({"store": {"backend": BACKEND_NAME}}, plugins=[_UnderTest(backend)])


def resumable_state(session: lash.session.SessionBase) -> tuple[Any, ...]:
    """Everything a resume must reproduce."""
    return (
        session.head_revision,
        list(session.graph.nodes.values()),
        session.graph.leaf_node_id,
        session.frames,
        session.current_frame,
        session.config,
        session.turn_state,
        session.tools.state(),
        session.plugin_snapshot,
        session.execution_state,
        session._state.usage_report(),
        session.messages(),
    )


def _stored_node_ids(backend: Backend, session_id: str) -> list[str]:
    store = backend.open_session(session_id, create=False)
    assert store is not None
    try:
        read = store.load_session(FullGraph())
        return [] if read is None else list(read.graph.nodes)
    finally:
        store.close()


def _stored_revision(backend: Backend, session_id: str) -> int | None:
    store = backend.open_session(session_id, create=False)
    assert store is not None
    try:
        read = store.load_session(FullGraph())
        return None if read is None else read.head_revision
    finally:
        store.close()


class AsyncBackendTests(BackendFixtures):
    """The contract through ``lash.aio``: add it to a backend's :class:`~lash.testing.BackendTests` class."""

    @pytest.fixture
    def async_face(self, backend: Backend) -> Iterator[AsyncFace]:
        """The backend's :class:`AsyncBackend` (native or worker pool), driven from synchronous code."""
        loop = LoopThread()
        executor = ThreadPoolExecutor(4, thread_name_prefix="lash-testing")

        async def face() -> AsyncBackend:
            return lash.aio.async_backend(backend, executor)

        async_backend = loop.run(face())
        try:
            yield AsyncFace(BlockingBackend(async_backend, loop), loop)
        finally:
            loop.run(async_backend.close())
            loop.close()
            executor.shutdown()

    # -- the runtime through lash.aio ---------------------------------------------------------

    def test_async_session_resumes_exactly_what_it_committed(self, backend: Backend) -> None:
        async def record() -> tuple[Any, ...]:
            async with open_async(backend) as handle:
                session = await handle.session("resumed")
                for turn in range(3):
                    session.append_message("user", f"question {turn}")
                    session.append_message("assistant", f"answer {turn}")
                    session.record_usage("agent", "m", TokenUsage(input_tokens=10, output_tokens=turn))
                    session.tools.register({"name": f"tool_{turn}"})
                    session.set_execution_state(bytes([turn]) * 100)
                    await session.commit()
                assert await session.compact() in (True, False)
                return resumable_state(session)

        async def resume(target: Backend) -> tuple[Any, ...]:
            async with open_async(target) as handle:
                return resumable_state(await handle.session("resumed"))

        committed = asyncio.run(record())
        reopened = self.reopen(backend)
        try:
            assert asyncio.run(resume(reopened)) == committed
            with open_sync(reopened) as handle:
                assert resumable_state(handle.session("resumed")) == committed
        finally:
            if reopened is not backend:
                reopened.close()

    def test_async_conflict_then_refresh_keeps_both_writers_nodes(self, backend: Backend) -> None:
        async def scenario() -> None:
            async with open_async(backend) as first, open_async(backend) as second:
                a, b = await first.session("shared"), await second.session("shared")
                a.append_message("user", "from a")
                await a.commit()
                b.append_message("user", "from b")
                with pytest.raises(lash.HeadRevisionConflict):
                    await b.commit()
                assert b.head_revision is None and b.dirty
                await b.refresh()
                assert (await b.commit()).head_revision == 2
                assert [m["content"] for m in b.messages()] == ["from a", "from b"]

        asyncio.run(scenario())
        assert len(_stored_node_ids(backend, "shared")) == 2

    def test_async_children_usage_listing_delete_and_gc(self, backend: Backend) -> None:
        async def scenario() -> None:
            async with open_async(backend) as handle:
                parent = await handle.session("parent")
                parent.append_message("user", "delegate this")
                await parent.commit()
                child = await parent.spawn_child("parent.child")
                child.record_usage("subagent", "m", TokenUsage(output_tokens=7))
                await child.commit()
                infos = {info.session_id: info for info in await handle.sessions()}
                assert infos["parent.child"].parent_session_id == "parent"
                assert (await handle.usage_of_children("parent")).total == TokenUsage(output_tokens=7)
                assert await handle.delete("parent.child") is True
                assert child.closed
                assert "parent.child" not in {info.session_id for info in await handle.sessions()}
                assert isinstance(await handle.gc(), GcReport)
                assert parent.messages() == [{"role": "user", "content": "delegate this"}]

        asyncio.run(scenario())

    def test_async_prune_drops_the_abandoned_branch(self, backend: Backend) -> None:
        async def scenario() -> None:
            async with open_async(backend) as handle:
                session = await handle.session("pruned")
                root = session.append_message("user", "root")
                session.append_message("assistant", "abandoned")
                await session.commit()
                session.checkout(root)
                kept = session.append_message("assistant", "kept")
                await session.commit()
                report = await session.prune()
                assert (report.tombstoned_node_count, report.removed_node_count) == (1, 1)
                assert list(session.graph.nodes) == [root, kept]

        asyncio.run(scenario())
        assert len(_stored_node_ids(backend, "pruned")) == 2

    def test_async_commit_cancelled_at_any_point_leaves_head_old_or_new(self, backend: Backend) -> None:
        rng = random.Random(13)

        async def scenario() -> None:
            async with open_async(backend, gc={"auto_every_commits": 3}) as handle:
                session = await handle.session("cancelled")
                appended: list[str] = []
                for run in range(CANCELLATION_RUNS):
                    before = session.head_revision
                    appended.append(session.append_message("user", f"turn {run}"))
                    session.set_execution_state(rng.randbytes(64))
                    task = asyncio.create_task(session.commit())
                    for _ in range(rng.randrange(12)):
                        await asyncio.sleep(0)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    stored = _stored_revision(backend, "cancelled")
                    assert stored in (before, (before or 0) + 1), f"run {run}: head {stored} after {before}"
                    assert session.head_revision == stored, f"run {run}: session out of step with its store"
                    assert not session.busy
                await session.commit()
                assert _stored_node_ids(backend, "cancelled") == appended
                assert list(session.graph.nodes) == appended

        asyncio.run(scenario())


for _name, _case in _contract_cases().items():
    setattr(AsyncBackendTests, _name, _case)
