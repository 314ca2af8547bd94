"""The two faces of a saver: the steps of :mod:`lash_langgraph.operations` answered with ``lash`` or ``lash.aio``.

A face owns a :class:`~lash_langgraph.threads.Threads` cache of open sessions and runs one
operation at a time: LangGraph may call a saver from several threads (sync) or tasks
(async), and a cached session must not be changed by two operations at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import lash
import lash.aio
from lash.model import SessionInfo
from lash_langgraph.threads import Operation, Threads

T = TypeVar("T")


class SyncFace:
    """Answers steps with plain calls on a :class:`lash.Lash` (the saver's sync methods)."""

    def __init__(self, handle: lash.Lash, threads: Threads) -> None:
        self.handle = handle
        self.threads = threads
        self._lock = threading.Lock()

    def run(self, operation: Operation[T]) -> T:
        """Drive ``operation`` to its end with blocking calls."""
        with self._lock:
            outcome: Any = None
            error: BaseException | None = None
            while True:
                try:
                    step = operation.send(outcome) if error is None else operation.throw(error)
                except StopIteration as done:
                    return done.value
                try:
                    outcome, error = getattr(self, step.method)(*step.args), None
                except BaseException as exc:
                    outcome, error = None, exc

    def close(self) -> None:
        """Close the sessions this face keeps open."""
        self.run(self.threads.close_all())

    # -- the steps --------------------------------------------------------------------------

    def open(self, session_id: str) -> lash.Session:
        return self.handle.session(session_id)

    def spawn(self, parent: lash.Session, session_id: str) -> lash.Session:
        return parent.spawn_child(session_id)

    def exists(self, session_id: str) -> bool:
        store = self.handle.backend.open_session(session_id, create=False)
        if store is None:
            return False
        store.close()
        return True

    def revision(self, session: lash.Session) -> int | None:
        """The session's committed head revision: the head alone is read, not its nodes."""
        head = session.store.load_head()
        return None if head is None else head.revision

    def commit(self, session: lash.Session) -> None:
        session.commit()

    def close_session(self, session: lash.Session) -> None:
        session.close()

    def sessions(self) -> list[SessionInfo]:
        return self.handle.sessions()

    def delete(self, session_id: str) -> bool:
        return self.handle.delete(session_id)


class AsyncFace:
    """Answers steps with awaited calls on a :class:`lash.aio.Lash` (the saver's ``a*`` methods).

    ``opener`` opens the handle on the first operation, in the running loop, when the saver
    opens it itself (``owned``); a handle the caller passed is used as is and left open.
    ``loop`` is the event loop of the first operation (the one the handle belongs to).
    """

    def __init__(self, threads: Threads, handle: lash.aio.Lash | None, opener: Opener | None = None) -> None:
        self.threads = threads
        self.handle = handle
        self.owned = handle is None
        self._opener = opener
        self._lock = asyncio.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def run(self, operation: Operation[T]) -> T:
        """Drive ``operation`` to its end, one operation at a time, opening the handle first if need be."""
        async with self._lock:
            if self.handle is None:
                assert self._opener is not None
                self.handle = await self._opener()
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            return await self._drive(operation)

    async def _drive(self, operation: Operation[T]) -> T:
        """Await each step; a cancellation is thrown into the operation like any error (it drops what it cached)."""
        outcome: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = operation.send(outcome) if error is None else operation.throw(error)
            except StopIteration as done:
                return done.value
            try:
                outcome, error = await getattr(self, step.method)(*step.args), None
            except BaseException as exc:
                outcome, error = None, exc

    async def close(self, *, locked: bool = True) -> None:
        """Close the sessions this face keeps open, and the handle if the face opened it.

        ``locked=False`` skips the face's lock: for a face whose event loop has ended, whose
        lock belongs to that loop and which nothing else can be using.
        """
        if self.handle is None:
            return
        if locked:
            await self.run(self.threads.close_all())
        else:
            await self._drive(self.threads.close_all())
        if self.owned:
            await self.handle.close()

    # -- the steps --------------------------------------------------------------------------

    async def open(self, session_id: str) -> lash.aio.Session:
        return await self._opened_handle().session(session_id)

    async def spawn(self, parent: lash.aio.Session, session_id: str) -> lash.aio.Session:
        return await parent.spawn_child(session_id)

    async def exists(self, session_id: str) -> bool:
        store = await self._opened_handle().async_backend.open_session(session_id, create=False)
        if store is None:
            return False
        await store.close()
        return True

    async def revision(self, session: lash.aio.Session) -> int | None:
        """As :meth:`SyncFace.revision`, through the store's async face."""
        head = await session.store.load_head()
        return None if head is None else head.revision

    async def commit(self, session: lash.aio.Session) -> None:
        await session.commit()

    async def close_session(self, session: lash.aio.Session) -> None:
        await session.close()

    async def sessions(self) -> list[SessionInfo]:
        return await self._opened_handle().sessions()

    async def delete(self, session_id: str) -> bool:
        return await self._opened_handle().delete(session_id)

    def _opened_handle(self) -> lash.aio.Lash:
        assert self.handle is not None, "steps run inside run(), after the handle is open"
        return self.handle


Opener = Callable[[], Awaitable[lash.aio.Lash]]
