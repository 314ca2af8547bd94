"""A backend with its own ``async_backend()`` is awaited directly and passes the async conformance cases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from typing import Any

import pytest
from lash_memory import MemoryBackend

from lash.blobs import BlobStore
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
    VacuumReport,
)
from lash.store import ANY_REVISION, ExpectedRevision, SessionStore
from lash.testing import AsyncBackendTests
from lash.testing.aio import open_async


class InlineStore:
    """A native AsyncSessionStore for in-memory data: nothing blocks, so it runs on the loop itself."""

    def __init__(self, store: SessionStore, calls: list[threading.Thread]) -> None:
        self.store = store
        self.session_id = store.session_id
        self.calls = calls

    @property
    def blobs(self) -> BlobStore:
        return self.store.blobs

    def _note(self) -> SessionStore:
        self.calls.append(threading.current_thread())
        return self.store

    async def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        return self._note().load_session(scope)

    async def load_head(self) -> Head | None:
        return self._note().load_head()

    async def load_node(self, node_id: str) -> Node | None:
        return self._note().load_node(node_id)

    async def commit(self, commit: Commit) -> CommitResult:
        return self._note().commit(commit)

    async def save_meta(self, meta: SessionMeta) -> None:
        self._note().save_meta(meta)

    async def load_meta(self) -> SessionMeta | None:
        return self._note().load_meta()

    async def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        return self._note().tombstone_nodes(node_ids)

    async def vacuum(self) -> VacuumReport:
        return self._note().vacuum()

    async def gc_unreachable(self) -> GcReport:
        return self._note().gc_unreachable()

    async def close(self) -> None:
        self._note().close()


class InlineBackend:
    """A native AsyncBackend over a MemoryBackend."""

    def __init__(self, backend: MemoryBackend, calls: list[threading.Thread]) -> None:
        self.backend = backend
        self.calls = calls

    @property
    def blobs(self) -> BlobStore | None:
        return self.backend.blobs

    async def open_session(self, session_id: str, *, create: bool = True) -> InlineStore | None:
        store = self.backend.open_session(session_id, create=create)
        return None if store is None else InlineStore(store, self.calls)

    async def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        return self.backend.delete_session(session_id, expected_head_revision=expected_head_revision)

    async def list_sessions(self) -> list[SessionInfo]:
        return self.backend.list_sessions()

    async def gc(self) -> GcReport:
        return self.backend.gc()

    async def close(self) -> None:
        pass


class MemoryWithNativeAsync(MemoryBackend):
    """The memory backend, declaring a native async face through ``async_backend()``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[threading.Thread] = []

    def async_backend(self, executor: Executor) -> InlineBackend:
        return InlineBackend(self, self.calls)


class TestNativeAsyncBackend(AsyncBackendTests):
    @pytest.fixture
    def backend(self) -> Iterator[MemoryWithNativeAsync]:
        backend = MemoryWithNativeAsync(gc_grace_seconds=0)
        yield backend
        backend.close()

    def test_native_async_backend_is_awaited_on_the_loop_without_the_worker_pool(
        self, backend: MemoryWithNativeAsync
    ) -> None:
        async def scenario() -> threading.Thread:
            async with open_async(backend) as handle:
                assert isinstance(handle.async_backend, InlineBackend)
                session = await handle.session("native")
                session.append_message("user", "hi")
                await session.commit()
                return threading.current_thread()

        loop_thread = asyncio.run(scenario())
        assert backend.calls and set(backend.calls) == {loop_thread}
