"""The ``postgres`` backend: every session of a fleet in one PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from psycopg import sql

from lash import codec
from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.errors import ConfigError
from lash.model import GcReport, Head, SessionInfo, SessionMeta
from lash.store import SessionSummary, StorageBackend, StoredHead, session_info
from lash_postgres.database import Database
from lash_postgres.errors import ConnectionTarget, translating
from lash_postgres.migrations import migrate
from lash_postgres.storage import PostgresBlobStorage, PostgresSessionStorage, Statements

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
        self.db = Database(
            self.target,
            pool_min=pool_min,
            pool_max=pool_max,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )
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

    # -- StorageBackend primitives ----------------------------------------------------------

    def _open_storage(self, session_id: str, *, create: bool) -> PostgresSessionStorage | None:
        statement = self.sql.create_session if create else self.sql.session_exists

        def work(conn: psycopg.Connection) -> bool:
            cursor = conn.execute(statement, (session_id,))
            return create or cursor.fetchone() is not None

        if not self.db.run(work, action=f"opening session {session_id!r}"):
            return None
        return PostgresSessionStorage(self.db, self.sql, session_id)

    def _session_blobs(self, storage: PostgresSessionStorage) -> EnvelopeBlobStore:  # type: ignore[override]
        return self._blob_store

    def _own_shared_blobs(self) -> EnvelopeBlobStore:
        return self._blob_store

    def _session_ids(self) -> list[str]:
        rows = self.db.run(lambda conn: conn.execute(self.sql.session_ids).fetchall(), action="listing sessions")
        return [row[0] for row in rows]

    def _delete_storage(self, session_id: str) -> bool:
        """Delete the session row; its head, nodes, ledger and meta go with it (``ON DELETE CASCADE``).

        Blobs are shared by content, so they are not the session's to delete: those no other
        head references are collected by :meth:`gc`.
        """
        rows = self.db.run(
            lambda conn: conn.execute(self.sql.delete_session, (session_id,)).fetchall(),
            action=f"deleting session {session_id!r}",
        )
        return bool(rows)

    def _close(self) -> None:
        self.db.close()

    def gc(self) -> GcReport:
        """Collect unreferenced blobs, then refresh planner statistics.

        ``pg_statistic`` keeps samples of deleted sessions' values until the next ANALYZE;
        GC follows every deletion and retention run, so it refreshes them (ANALYZE samples at
        most 30,000 rows per table and does not block writers).
        """
        report = super().gc()
        self.db.run(lambda conn: conn.execute(self.sql.analyze), action="refreshing planner statistics")
        return report

    # -- one query instead of one per session -----------------------------------------------

    # Encrypted records can only be opened per session, through the core's wrapper: with
    # encryption, listing and GC roots take the shared path (one read per session) instead.

    def list_sessions(self) -> list[SessionInfo]:
        """Every session with its counts, read from the head summaries in one query (no node scans)."""
        if self.encryption is not None:
            return super().list_sessions()
        rows = self.db.run(
            lambda conn: conn.execute(self.sql.listing, binary=True).fetchall(), action="listing sessions"
        )
        infos = []
        for session_id, head_data, meta_data in rows:
            stored = None if head_data is None else codec.decode(head_data, StoredHead, f"head of {session_id!r}")
            if stored is not None and stored.deleted_at is not None:  # being deleted right now
                continue
            meta = None if meta_data is None else codec.decode(meta_data, SessionMeta, f"meta of {session_id!r}")
            summary = stored.summary if stored else SessionSummary()
            infos.append(session_info(session_id, meta, stored.head if stored else None, summary))
        return infos

    def _heads(self) -> Iterator[Head]:
        """Every live head, in one query: the GC roots of the shared blob table."""
        if self.encryption is not None:
            yield from super()._heads()
            return
        rows = self.db.run(
            lambda conn: conn.execute(self.sql.all_heads, binary=True).fetchall(), action="reading heads"
        )
        for session_id, data in rows:
            stored = codec.decode(data, StoredHead, f"head of {session_id!r}")
            if stored.deleted_at is None:
                yield stored.head
