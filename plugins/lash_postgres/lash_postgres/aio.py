"""The native async face of the ``postgres`` backend (``lash.aio``), on psycopg's ``AsyncConnectionPool``.

Nothing here decides anything: the store rules are lash's own (:mod:`lash.store_rules`,
driven by :class:`lash.aio.store.AsyncStorageBackend`), the statements and what their rows
mean are the query programs the sync backend runs (:mod:`lash_postgres.storage`,
:mod:`lash_postgres.queries`). This module only awaits them, so a session opened through
``lash.aio`` never hands a storage call to a worker thread: its commit, its blob writes
(joined to the commit's transaction) and its reads are awaited on the event loop.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING

from lash.aio.store import AsyncStorageBackend
from lash.model import GcReport, Head, SessionInfo
from lash_postgres import queries
from lash_postgres.database import AsyncDatabase
from lash_postgres.storage import AsyncPostgresBlobStorage, AsyncPostgresSessionStorage

if TYPE_CHECKING:
    from lash_postgres.backend import PostgresBackend


class AsyncPostgresBackend(AsyncStorageBackend):
    """The :class:`~lash.store.AsyncBackend` of a ``PostgresBackend``, with an async pool of its own."""

    def __init__(self, backend: PostgresBackend, executor: Executor) -> None:
        super().__init__(backend, executor)
        self.sync = backend
        self.sql = backend.sql
        self.db = AsyncDatabase(backend.target, **backend.pool_limits)
        self.blob_storage = AsyncPostgresBlobStorage(self.db, self.sql)

    def __repr__(self) -> str:
        return f"<AsyncPostgresBackend {self.sync.target.display} schema={self.sync.schema!r}>"

    async def _open_storage(self, session_id: str, *, create: bool) -> AsyncPostgresSessionStorage | None:
        opened = await self.db.run(
            lambda: queries.open_session(self.sql, session_id, create), action=f"opening session {session_id!r}"
        )
        return AsyncPostgresSessionStorage(self.db, self.sql, session_id) if opened else None

    async def _session_ids(self) -> list[str]:
        return await self.db.run(lambda: queries.session_ids(self.sql), action="listing sessions")

    async def _delete_storage(self, session_id: str) -> bool:
        return await self.db.run(
            lambda: queries.delete_session(self.sql, session_id), action=f"deleting session {session_id!r}"
        )

    def _own_blob_storage(self) -> AsyncPostgresBlobStorage:
        return self.blob_storage

    async def _close(self) -> None:
        await self.db.close()

    async def gc(self) -> GcReport:
        """:meth:`PostgresBackend.gc <lash_postgres.backend.PostgresBackend.gc>`: collect, then ANALYZE."""
        report = await super().gc()
        await self.db.run(lambda: queries.analyze(self.sql), action="refreshing planner statistics")
        return report

    async def list_sessions(self) -> list[SessionInfo]:
        if self.sync.encryption is not None:  # sealed records open per session only
            return await super().list_sessions()
        return await self.db.run(lambda: queries.listing(self.sql), action="listing sessions")

    async def _live_heads(self) -> list[Head]:
        if self.sync.encryption is not None:
            return await super()._live_heads()
        return await self.db.run(lambda: queries.live_heads(self.sql), action="reading heads")
