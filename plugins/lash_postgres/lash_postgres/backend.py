"""The ``postgres`` backend: every session of a fleet in one PostgreSQL schema."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.errors import ConfigError
from lash.model import GcReport, Head, SessionInfo
from lash.store import StorageBackend
from lash_postgres import queries
from lash_postgres.database import Database
from lash_postgres.errors import ConnectionTarget, translating
from lash_postgres.migrations import migrate
from lash_postgres.storage import PostgresBlobStorage, PostgresSessionStorage, Statements

if TYPE_CHECKING:
    from lash_postgres.aio import AsyncPostgresBackend

MAX_IDENTIFIER_LENGTH = 63
"""PostgreSQL silently truncates longer names; lash refuses them instead."""


def _positive(name: str, value: object, *, integer: bool = False, minimum: float = 0.0) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {what} >= {minimum:g}, not {value!r}", key=f"options.{name}")


def _check_schema(schema: object) -> str:
    if not isinstance(schema, str) or not schema or "\x00" in schema:
        raise ConfigError(f"schema must be a non-empty name, not {schema!r}", key="options.schema")
    if len(schema.encode("utf-8")) > MAX_IDENTIFIER_LENGTH:
        raise ConfigError(f"schema name longer than {MAX_IDENTIFIER_LENGTH} bytes: {schema!r}", key="options.schema")
    return schema


class PostgresBackend(StorageBackend):
    """Sessions, heads, nodes, ledgers and meta in one schema; blobs in one shared table.

    Options: ``dsn`` (else ``$LASH_POSTGRES_DSN``), ``schema`` (``lash``; created and migrated
    on open), ``pool_min``/``pool_max`` (connections per process, 1/10), ``connect_timeout``
    (seconds, 10), ``statement_timeout`` (seconds a statement or a wait for another host's
    session lock may take, 30; 0 = none), ``blob_profile`` (``balanced``) and
    ``gc_grace_seconds`` (3600: ``gc()`` keeps unreferenced blobs younger than this, so a
    blob written by a commit still in flight on another host survives).
    """

    def __init__(
        self,
        *,
        dsn: str | None = None,
        schema: str = "lash",
        pool_min: int = 1,
        pool_max: int = 10,
        connect_timeout: float = 10.0,
        statement_timeout: float = 30.0,
        blob_profile: str = BlobProfile.BALANCED,
        gc_grace_seconds: float = 3600.0,
    ) -> None:
        _positive("pool_min", pool_min, integer=True)
        _positive("pool_max", pool_max, integer=True, minimum=max(1, pool_min))
        _positive("connect_timeout", connect_timeout, minimum=1)
        _positive("statement_timeout", statement_timeout)
        _positive("gc_grace_seconds", gc_grace_seconds)
        super().__init__(gc_grace_seconds=gc_grace_seconds)
        self.target = ConnectionTarget.parse(dsn)
        self.schema = _check_schema(schema)
        self.blob_profile = BlobProfile(blob_profile)
        quoted = sql.Identifier(self.schema).as_string()
        self._migrate(quoted, connect_timeout, statement_timeout)
        self.sql = Statements(quoted)
        self.pool_limits = {
            "pool_min": pool_min,
            "pool_max": pool_max,
            "connect_timeout": connect_timeout,
            "statement_timeout": statement_timeout,
        }
        """The options of every pool this backend opens (the sync one here, the async one in :meth:`async_backend`)."""
        self.db = Database(self.target, **self.pool_limits)
        self.blob_storage = PostgresBlobStorage(self.db, self.sql)
        self._blob_store = EnvelopeBlobStore(self.blob_storage, self.blob_profile)

    def __repr__(self) -> str:
        return f"<PostgresBackend {self.target.display} schema={self.schema!r}>"

    def _migrate(self, quoted: str, connect_timeout: float, statement_timeout: float) -> None:
        """Connect once, outside the pool, so a bad DSN fails here with the server's reason."""
        with (
            translating(self.target, f"opening schema {self.schema!r}", statement_timeout),
            psycopg.connect(
                self.target.conninfo, autocommit=True, connect_timeout=max(2, round(connect_timeout))
            ) as conn,
        ):
            migrate(conn, self.schema, quoted)

    def async_backend(self, executor: Executor) -> AsyncPostgresBackend:
        """The native async face (``lash.aio``): the same statements on psycopg's ``AsyncConnectionPool``.

        Called on the event-loop thread; the pool (``pool_min``/``pool_max`` connections of
        its own) opens on first use and is closed by the async face's ``close()``.
        """
        from lash_postgres.aio import AsyncPostgresBackend  # imports lash.aio only when it is used

        return AsyncPostgresBackend(self, executor)

    # -- StorageBackend primitives ----------------------------------------------------------

    def _open_storage(self, session_id: str, *, create: bool) -> PostgresSessionStorage | None:
        opened = self.db.run(
            lambda: queries.open_session(self.sql, session_id, create), action=f"opening session {session_id!r}"
        )
        if not opened:
            return None
        return PostgresSessionStorage(self.db, self.sql, session_id)

    def _session_blobs(self, storage: PostgresSessionStorage) -> EnvelopeBlobStore:  # type: ignore[override]
        return self._blob_store

    def _own_shared_blobs(self) -> EnvelopeBlobStore:
        return self._blob_store

    def _session_ids(self) -> list[str]:
        return self.db.run(lambda: queries.session_ids(self.sql), action="listing sessions")

    def _delete_storage(self, session_id: str) -> bool:
        """Delete the session row; its head, nodes, ledger and meta go with it (``ON DELETE CASCADE``).

        Blobs are shared by content, so they are not the session's to delete: those no other
        head references are collected by :meth:`gc`.
        """
        return self.db.run(
            lambda: queries.delete_session(self.sql, session_id), action=f"deleting session {session_id!r}"
        )

    def _close(self) -> None:
        self.db.close()

    def gc(self) -> GcReport:
        """Collect unreferenced blobs, then refresh planner statistics.

        ``pg_statistic`` keeps samples of deleted sessions' values until the next ANALYZE;
        GC follows every deletion and retention run, so it refreshes them (ANALYZE samples at
        most 30,000 rows per table and does not block writers).
        """
        report = super().gc()
        self.db.run(lambda: queries.analyze(self.sql), action="refreshing planner statistics")
        return report

    # -- one query instead of one per session -----------------------------------------------

    # Encrypted records can only be opened per session, through the core's wrapper: with
    # encryption, listing and GC roots take the shared path (one read per session) instead.

    def list_sessions(self) -> list[SessionInfo]:
        """Every session with its counts, read from the head summaries in one query (no node scans)."""
        if self.encryption is not None:
            return super().list_sessions()
        return self.db.run(lambda: queries.listing(self.sql), action="listing sessions")

    def _live_heads(self) -> list[Head]:
        """Every live head, in one query: the GC roots of the shared blob table."""
        if self.encryption is not None:
            return super()._live_heads()
        return self.db.run(lambda: queries.live_heads(self.sql), action="reading heads")
