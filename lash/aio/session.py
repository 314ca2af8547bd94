"""The asynchronous session: the recording calls of :class:`lash.session.SessionBase`, awaited storage.

Storage calls of one session run one at a time. A second storage call started while one
is running (from another task) raises :class:`~lash.SessionBusyError` rather than
queueing: a commit started behind another would be built from state the first one is
about to change, and one transcript written by two tasks at once is almost always a bug.
Recording calls (``append_message``, ``record_usage``, ...) may run while a commit is in
flight: the commit sends what was recorded before it started, the rest goes with the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from lash import operations
from lash.aio.driver import drive, settle
from lash.errors import InvalidGraphError, LashError, SessionBusyError
from lash.model import CommitResult, SessionMeta
from lash.operations import Operation, PruneReport
from lash.session import SessionBase, SessionState, UsageReport
from lash.store import AsyncSessionStore

if TYPE_CHECKING:
    from lash.aio.runtime import Lash

T = TypeVar("T")


class Session(SessionBase):
    """A live agent session with awaitable storage calls. Create it with ``await handle.session(id)``."""

    def __init__(self, lash: Lash, store: AsyncSessionStore, state: SessionState) -> None:
        super().__init__(state)
        self._lash = lash
        self._store = store
        self._running: str | None = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def store(self) -> AsyncSessionStore:
        """The underlying async store, for low-level use."""
        return self._store

    @property
    def lash(self) -> Lash:
        """The handle this session belongs to."""
        return self._lash

    @property
    def busy(self) -> bool:
        """Whether a storage call of this session is running."""
        return self._running is not None

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[SessionState]:
        state = self._check_open()
        self._lash._check_loop()
        if self._running is not None:
            raise SessionBusyError(self.session_id, self._running, name)
        self._running = name
        try:
            yield state
        finally:
            self._running = None

    async def _drive(self, operation: Operation[T]) -> T:
        return await drive(operation, self._lash._executor)

    # -- recording ------------------------------------------------------------------------

    def usage_report(self, *, include_children: bool = False) -> UsageReport:
        """Totals of committed and pending usage of this session.

        Child sessions' usage needs storage reads: ``report + await handle.usage_of_children(id)``.
        """
        if include_children:
            raise LashError(
                "lash.aio: usage_report(include_children=True) would read storage; "
                f"use session.usage_report() + await handle.usage_of_children({self.session_id!r})"
            )
        return self._state.usage_report()

    def checkout(self, node_id: str) -> None:
        """Continue from an earlier node in memory: the next append starts a new branch there.

        With ``active_path`` residency a node off the resident path must be loaded first:
        ``await session.load_path(node_id)``.
        """
        state = self._checked_node_id(node_id)
        if node_id not in state.graph and state.residency == "active_path" and state.head_revision is not None:
            raise InvalidGraphError(
                f"node {node_id!r} is not in memory (residency='active_path'); "
                "await session.load_path(node_id) before checkout(node_id)"
            )
        state.checkout(node_id)

    # -- storage --------------------------------------------------------------------------

    async def load_path(self, node_id: str) -> None:
        """Load ``node_id`` and its path when residency left them in storage (no-op otherwise)."""
        with self._exclusive("load_path") as state:
            await self._drive(operations.load_path(state, self._store, node_id))

    async def commit(self) -> CommitResult:
        """Persist everything recorded since the last commit, atomically (see :meth:`lash.Session.commit`).

        Cancelled while the store writes, the write still finishes and the session adopts
        it before :class:`asyncio.CancelledError` is raised: the head is old or new, never
        half-written, and the session knows which.
        """
        with self._exclusive("commit"):
            return await self._drive(operations.commit(self._lash._core, self, self._store))

    async def refresh(self) -> None:
        """Load the head another writer moved and re-base uncommitted work on it."""
        with self._exclusive("refresh") as state:
            await self._drive(operations.refresh(state, self._store))

    async def compact(self, instructions: str | None = None) -> bool:
        """Run the configured compactor (in the worker pool); with a result, open a new frame and commit."""
        with self._exclusive("compact"):
            return await self._drive(operations.compact(self._lash._core, self, self._store, instructions))

    async def spawn_child(self, session_id: str, plugin_options: Mapping[str, Any] | None = None) -> Session:
        """A child session (a sub-agent) whose parent is this one."""
        self._check_open()
        return await self._lash._open(
            session_id,
            residency=self._state.residency,
            plugin_options=plugin_options,
            parent_session_id=self.session_id,
        )

    async def prune(self) -> PruneReport:
        """Tombstone branches off the active path, vacuum them away and collect blobs."""
        with self._exclusive("prune") as state:
            return await self._drive(operations.prune(state, self._store))

    async def meta(self) -> SessionMeta | None:
        """The stored metadata."""
        with self._exclusive("meta"):
            return await self._store.load_meta()

    async def close(self) -> None:
        """Close the store (after a storage call in flight finishes); uncommitted changes are discarded."""
        if not self._closed:
            self._closed = True
            self._lash._forget(self)
            _, error, cancelled = await settle(self._store.close())
            if error is not None:
                raise error
            if cancelled is not None:
                raise cancelled
