"""``LashSaver``: LangGraph's ``BaseCheckpointSaver`` on lash sessions, on whatever backend lash is configured with.

Each ``(thread_id, checkpoint_ns)`` is a lash session (see :mod:`lash_langgraph.mapping`) whose
graph holds the thread's checkpoints as nodes (see :mod:`lash_langgraph.records`): a checkpoint's
node hangs under its parent checkpoint's chain, so a LangGraph fork is a lash branch and the
session's leaf follows the newest write. Every write is one lash commit (revision
compare-and-swap); on a conflict with another writer the saver reloads and retries.

Every method is written once, in :mod:`lash_langgraph.operations`; the sync methods run it on
``lash`` and the ``a*`` methods on ``lash.aio`` (see :mod:`lash_langgraph.faces`).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash
import lash.aio
from lash_langgraph import operations
from lash_langgraph.faces import AsyncFace, SyncFace
from lash_langgraph.operations import ListQuery
from lash_langgraph.threads import Threads


class LashSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that stores threads in lash.

    * ``LashSaver(handle)`` with a :class:`lash.Lash` serves the sync methods (``graph.invoke``),
      with a :class:`lash.aio.Lash` the ``a*`` methods (``graph.ainvoke``); the other face raises
      :class:`lash.AsyncUsageError`. The caller closes the handle.
    * :meth:`from_config` serves both: it opens a ``lash.Lash`` now and, on the first ``a*``
      call, a ``lash.aio`` handle in the running event loop; the saver closes both.
    """

    def __init__(
        self,
        lash_handle: lash.Lash | lash.aio.Lash,
        *,
        serde: SerializerProtocol | None = None,
        max_open_sessions: int = 64,
    ) -> None:
        super().__init__(serde=serde)
        self.lash = lash_handle
        self.max_open_sessions = max_open_sessions
        self._sync: SyncFace | None = None
        self._async: AsyncFace | None = None
        if isinstance(lash_handle, lash.Lash):
            self._sync = SyncFace(lash_handle, self._threads())
        elif isinstance(lash_handle, lash.aio.Lash):
            self._async = AsyncFace(self._threads(), lash_handle)
        else:
            raise TypeError(
                "LashSaver needs an open lash.Lash (lash.open(...)) or lash.aio.Lash (await lash.aio.open(...)), "
                f"not {type(lash_handle).__name__}"
            )
        self._async_source: tuple[lash.LashConfig, tuple[object, ...], int | None] | None = None
        self._owns_handle = False
        self._closed = False

    @classmethod
    def from_config(
        cls,
        config: lash.LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        serde: SerializerProtocol | None = None,
        plugins: Iterable[object] = (),
        max_workers: int | None = None,
    ) -> LashSaver:
        """A saver on ``lash.open(config)`` (same lookup order: path, dict, ``$LASH_CONFIG``, ``lash.toml``).

        Its ``a*`` methods open ``lash.aio.open(config, max_workers=...)`` on first use. The two
        handles see each other's commits on a durable backend, like two processes; the
        memory backend gives each its own store.
        """
        plugins = tuple(plugins)
        handle = lash.open(config, plugins=plugins)
        saver = cls(handle, serde=serde)
        saver._owns_handle = True
        saver._async_source = (handle.config, plugins, max_workers)
        return saver

    def _threads(self) -> Threads:
        return Threads(self.serde, self.max_open_sessions)

    # -- the faces --------------------------------------------------------------------------

    def _sync_face(self) -> SyncFace:
        if self._sync is None:
            raise lash.AsyncUsageError(
                "this LashSaver wraps a lash.aio handle, which serves the async methods (graph.ainvoke, "
                "aget_tuple, ...); for sync calls give it a lash.Lash or use LashSaver.from_config(...)"
            )
        return self._sync

    async def _async_face(self) -> AsyncFace:
        if self._closed:
            raise lash.SessionClosedError("this LashSaver is closed")
        face = self._async
        loop = asyncio.get_running_loop()
        if face is not None and face.owned and face.loop not in (None, loop):
            if not face.loop.is_closed():
                raise lash.AsyncUsageError(
                    "this LashSaver's async methods are in use in another event loop; use one saver per loop"
                )
            # The loop of its lash.aio handle has ended (asyncio.run returned): release it, open anew here.
            self._async = None
            await face.close(locked=False)
            face = None
        if face is None:
            if self._async_source is None:
                raise lash.AsyncUsageError(
                    "this LashSaver wraps a sync lash.Lash, which serves the sync methods (graph.invoke, "
                    "get_tuple, ...); for async calls give it `await lash.aio.open(...)` or use "
                    "LashSaver.from_config(...)"
                )
            config, plugins, max_workers = self._async_source
            face = self._async = AsyncFace(
                self._threads(), None, lambda: lash.aio.open(config, plugins=plugins, max_workers=max_workers)
            )
        return face

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sessions the saver keeps open, and the lash handles it opened.

        Inside a running event loop whose ``a*`` calls the saver served, use :meth:`aclose`.
        """
        face = self._async
        if face is not None and face.loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not None:
                raise lash.AsyncUsageError(
                    "LashSaver.close() would block the running event loop: use `await saver.aclose()` "
                    "or `async with LashSaver.from_config(...) as saver`"
                )
            self._async = None
            if face.loop.is_running():  # served from an event loop in another thread
                asyncio.run_coroutine_threadsafe(face.close(), face.loop).result()
            else:
                asyncio.run(face.close(locked=False))
        self._close_sync()

    async def aclose(self) -> None:
        """Close the sessions the saver keeps open, and the lash handles it opened, from async code."""
        face, self._async = self._async, None
        if face is not None:
            await face.close(locked=face.loop in (None, asyncio.get_running_loop()))
        self._close_sync()

    def _close_sync(self) -> None:
        self._closed = True
        if self._sync is not None:
            self._sync.close()
        if self._owns_handle:
            self.lash.close()

    def __enter__(self) -> LashSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LashSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- reading ----------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the thread's newest one; None if there is none."""
        face = self._sync_face()
        return face.run(operations.get_tuple(face.threads, config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        face = await self._async_face()
        return await face.run(operations.get_tuple(face.threads, config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first per namespace, filtered by metadata, ``before`` a checkpoint id, up to ``limit``."""
        face = self._sync_face()
        query = ListQuery.of(config, filter, before, limit)
        for address in face.run(operations.addresses(face.threads, config)):
            if query.exhausted:
                return
            yield from query.take(face.run(operations.matching(face.threads, address, query)))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        face = await self._async_face()
        query = ListQuery.of(config, filter, before, limit)
        for address in await face.run(operations.addresses(face.threads, config)):
            if query.exhausted:
                return
            for found in query.take(await face.run(operations.matching(face.threads, address, query))):
                yield found

    # -- writing ----------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint as one node under its parent's chain, with the values of the channels it changed."""
        face = self._sync_face()
        return face.run(operations.put(face.threads, config, checkpoint, metadata, new_versions))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        face = await self._async_face()
        return await face.run(operations.put(face.threads, config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's pending writes for a checkpoint; a ``(task_id, idx)`` already stored is kept."""
        face = self._sync_face()
        face.run(operations.put_writes(face.threads, config, writes, task_id, task_path))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        face = await self._async_face()
        await face.run(operations.put_writes(face.threads, config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's sessions (every namespace), checkpoints and writes."""
        face = self._sync_face()
        face.run(operations.delete_thread(face.threads, thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        face = await self._async_face()
        await face.run(operations.delete_thread(face.threads, thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every namespace's checkpoints and writes to a thread that has none yet."""
        face = self._sync_face()
        face.run(operations.copy_thread(face.threads, source_thread_id, target_thread_id))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        face = await self._async_face()
        await face.run(operations.copy_thread(face.threads, source_thread_id, target_thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``, in every thread."""
        face = self._sync_face()
        face.run(operations.delete_for_runs(face.threads, run_ids))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        face = await self._async_face()
        await face.run(operations.delete_for_runs(face.threads, run_ids))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint (self-contained); ``delete``: delete the threads."""
        face = self._sync_face()
        face.run(operations.prune(face.threads, thread_ids, strategy))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        face = await self._async_face()
        await face.run(operations.prune(face.threads, thread_ids, strategy))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``"<32-digit counter>.<random>"`` like LangGraph's own savers: versions written on two forks differ."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"
