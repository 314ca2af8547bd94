"""The async face of a synchronous backend: every call in a bounded worker pool.

A backend without a native ``async_backend()`` is wrapped here. Each call runs in the
``ThreadPoolExecutor`` the ``lash.aio`` handle owns, never on the event-loop thread, and
the calls of one session store run one at a time (an ``asyncio.Lock`` per store), so a
store written for one thread at a time needs no locking of its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, TypeVar

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
from lash.store import ANY_REVISION, AsyncBackend, Backend, ExpectedRevision, SessionStore

T = TypeVar("T")


async def in_pool(executor: Executor, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in ``executor``, awaited."""
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(function, *args, **kwargs))


class ThreadedSessionStore:
    """:class:`~lash.store.AsyncSessionStore` over a :class:`~lash.store.SessionStore`, one call at a time."""

    def __init__(self, store: SessionStore, executor: Executor) -> None:
        self.store = store
        self.session_id = store.session_id
        self._executor = executor
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ThreadedSessionStore {self.store!r}>"

    @property
    def blobs(self) -> BlobStore:
        return self.store.blobs

    async def _call(self, method: str, *args: Any) -> Any:
        async with self._lock:
            return await in_pool(self._executor, getattr(self.store, method), *args)

    async def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        return await self._call("load_session", scope)

    async def load_head(self) -> Head | None:
        return await self._call("load_head")

    async def load_node(self, node_id: str) -> Node | None:
        return await self._call("load_node", node_id)

    async def commit(self, commit: Commit) -> CommitResult:
        return await self._call("commit", commit)

    async def save_meta(self, meta: SessionMeta) -> None:
        await self._call("save_meta", meta)

    async def load_meta(self) -> SessionMeta | None:
        return await self._call("load_meta")

    async def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        return await self._call("tombstone_nodes", list(node_ids))

    async def vacuum(self) -> VacuumReport:
        return await self._call("vacuum")

    async def gc_unreachable(self) -> GcReport:
        return await self._call("gc_unreachable")

    async def close(self) -> None:
        await self._call("close")


class ThreadedBackend:
    """:class:`~lash.store.AsyncBackend` over a :class:`~lash.store.Backend` and a worker pool."""

    def __init__(self, backend: Backend, executor: Executor) -> None:
        self.backend = backend
        self._executor = executor

    def __repr__(self) -> str:
        return f"<ThreadedBackend {self.backend!r}>"

    @property
    def blobs(self) -> BlobStore | None:
        return self.backend.blobs

    async def open_session(self, session_id: str, *, create: bool = True) -> ThreadedSessionStore | None:
        store = await in_pool(self._executor, self.backend.open_session, session_id, create=create)
        return None if store is None else ThreadedSessionStore(store, self._executor)

    async def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        if expected_head_revision is ANY_REVISION:  # backends written before compare-and-delete
            return await in_pool(self._executor, self.backend.delete_session, session_id)
        return await in_pool(
            self._executor, self.backend.delete_session, session_id, expected_head_revision=expected_head_revision
        )

    async def list_sessions(self) -> list[SessionInfo]:
        return await in_pool(self._executor, self.backend.list_sessions)

    async def gc(self) -> GcReport:
        return await in_pool(self._executor, self.backend.gc)

    async def close(self) -> None:
        """Nothing of its own to release: the owner closes the wrapped backend."""


def async_backend(backend: Backend, executor: Executor) -> AsyncBackend:
    """The native :class:`~lash.store.AsyncBackend` (``backend.async_backend(executor)``), else a threaded one.

    ``executor`` is the handle's worker pool: a native backend runs there only what has no
    async face of its own (an external ``[blobs]`` store).
    """
    native = getattr(backend, "async_backend", None)
    return native(executor) if native is not None else ThreadedBackend(backend, executor)
