"""``lash.aio.open()`` and the async :class:`Lash` handle.

The handle owns a bounded ``ThreadPoolExecutor`` (``max_workers``): config loading, plugin
and backend construction, and every call of a backend without a native async face run
there, never on the event-loop thread. A handle belongs to the event loop that opened it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lash import operations
from lash.aio.driver import drive, settle
from lash.aio.session import Session
from lash.aio.threaded import async_backend, in_pool
from lash.compaction import Compactor
from lash.config import LashConfig
from lash.errors import AsyncUsageError, SessionClosedError
from lash.model import GcReport, SessionInfo
from lash.plugins import PluginManager
from lash.retention import RetentionReport
from lash.runtime import LashCore
from lash.session import Residency, SessionState, UsageReport
from lash.store import AsyncBackend, Backend, check_session_id

ConfigSource = LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None


class Lash:
    """An open lash with awaitable storage calls. Get one with ``async with lash.aio.open(...)``."""

    def __init__(self, core: LashCore, executor: ThreadPoolExecutor, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._executor = executor
        self._loop = loop
        self.async_backend: AsyncBackend = async_backend(core.backend, executor)
        """The backend's async face: native (``backend.async_backend(executor)``) or run in the worker pool."""
        self._sessions: list[Session] = []
        self._closed = False

    async def __aenter__(self) -> Lash:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<lash.aio.Lash backend={self.config.store.backend!r} source={self.config.source}>"

    # -- what the sync handle has too ------------------------------------------------------

    @property
    def config(self) -> LashConfig:
        return self._core.config

    @property
    def plugin_manager(self) -> PluginManager:
        return self._core.plugin_manager

    @property
    def backend(self) -> Backend:
        """The configured (synchronous) Backend, for low-level use from a worker thread."""
        return self._core.backend

    @property
    def compactor(self) -> Compactor:
        return self._core.compactor

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            raise AsyncUsageError(
                "this lash.aio handle belongs to another event loop; open one handle per loop "
                "(asyncio.run() starts a new loop each time)"
            )

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("this lash.aio handle is closed")
        self._check_loop()

    # -- sessions -------------------------------------------------------------------------

    async def session(
        self,
        session_id: str = "root",
        *,
        residency: Residency = "keep_all",
        plugin_options: Mapping[str, Any] | None = None,
    ) -> Session:
        """Open (creating if needed) a root session and resume its committed state."""
        return await self._open(session_id, residency=residency, plugin_options=plugin_options, parent_session_id=None)

    async def _open(
        self,
        session_id: str,
        *,
        residency: Residency,
        plugin_options: Mapping[str, Any] | None,
        parent_session_id: str | None,
    ) -> Session:
        self._check_open()
        check_session_id(session_id)
        state = SessionState(session_id, residency=residency)
        store = await self._settled(self.async_backend.open_session(session_id, create=True))
        assert store is not None
        session = Session(self, store, state)
        try:
            await drive(
                operations.open_session(
                    self._core, session, store, plugin_options=plugin_options, parent_session_id=parent_session_id
                ),
                self._executor,
            )
        except BaseException:
            await settle(store.close())
            raise
        self._sessions.append(session)
        return session

    async def _settled(self, call: Awaitable[Any]) -> Any:
        """``call``'s result; a cancellation waits for it and is raised after (a store it opened is closed)."""
        result, error, cancelled = await settle(call)
        if error is not None:
            raise error
        if cancelled is not None:
            if hasattr(result, "close"):
                await settle(result.close())
            raise cancelled
        return result

    async def sessions(self) -> list[SessionInfo]:
        """Every stored session, for pickers."""
        self._check_open()
        return await self.async_backend.list_sessions()

    async def delete(self, session_id: str) -> bool:
        """Delete a session and everything it owns; True if it existed."""
        self._check_open()
        for session in list(self._sessions):
            if session.session_id == session_id:
                await session.close()
        return await self.async_backend.delete_session(session_id)

    async def gc(self) -> GcReport:
        """Delete every blob no session head references."""
        self._check_open()
        return await self.async_backend.gc()

    async def apply_retention(self, dry_run: bool = False) -> RetentionReport:
        """Enforce ``[retention]`` (see :meth:`lash.Lash.apply_retention`), in the worker pool."""
        self._check_open()
        return await in_pool(self._executor, self._core.retention, dry_run)

    async def usage_of_children(self, session_id: str) -> UsageReport:
        """Committed usage of every descendant of ``session_id`` (children, their children, ...)."""
        self._check_open()
        return await drive(operations.usage_of_children(self.async_backend, session_id), self._executor)

    async def close(self) -> None:
        """Close every open session, the async backend, the backend, then the worker pool."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.gather(*(session.close() for session in list(self._sessions)))
            await self.async_backend.close()
            await in_pool(self._executor, self._core.backend.close)
        finally:
            self._executor.shutdown(wait=False)

    def _forget(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
