"""lash's storage primitives as SQL on the shared schema, for the sync and the async driver.

:class:`PostgresTransaction` is :class:`lash.store.StorageTransaction` for one session
(:class:`AsyncPostgresTransaction` its async twin): every
statement names the session and touches only the rows it needs, nodes arrive in one
multi-row insert, ``read_path`` is a recursive CTE, and the head moves by compare-and-swap
on the revision read under the session's write lock. :class:`PostgresBlobStorage` is the
content-addressed blob table every session shares. Session ids, refs and bytes are always
bound parameters; the only text put into SQL is the schema name, quoted as an identifier.

Each primitive is written once, as a query program of :class:`SessionQueries` or
:class:`BlobQueries` (statements, parameters and what the rows mean); the sync and the
async classes only run it, with :func:`~lash_postgres.database.run_program` or with
:func:`~lash_postgres.database.drive_program`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg

from lash.blobs import StoredBlob
from lash.errors import HeadRevisionConflict, SessionDeletedError
from lash.model import BlobRef
from lash.store import LedgerKey, StoredNode
from lash_postgres.database import AsyncDatabase, Database, Program, Query, drive_program, run_program

LockedHead = tuple[int | None, bytes | None]
"""The head revision and record read while taking the session's write lock."""


class Statements:
    """Every statement, with the quoted schema name filled in once."""

    def __init__(self, quoted_schema: str) -> None:
        s = quoted_schema
        # Planner statistics sample column values: refreshed after GC, so that a deleted
        # session's values leave pg_statistic too.
        self.analyze = f"ANALYZE {s}.sessions, {s}.heads, {s}.nodes, {s}.ledger, {s}.meta, {s}.blobs"
        self.create_session = f"INSERT INTO {s}.sessions (session_id) VALUES (%s) ON CONFLICT DO NOTHING"
        self.session_exists = f"SELECT 1 FROM {s}.sessions WHERE session_id = %s"
        self.delete_session = f"DELETE FROM {s}.sessions WHERE session_id = %s RETURNING 1"
        self.session_ids = f"SELECT session_id FROM {s}.sessions ORDER BY session_id"
        self.listing = (
            f"SELECT s.session_id, h.data, m.data FROM {s}.sessions AS s"
            f" LEFT JOIN {s}.heads AS h ON h.session_id = s.session_id"
            f" LEFT JOIN {s}.meta AS m ON m.session_id = s.session_id ORDER BY s.session_id"
        )
        self.all_heads = f"SELECT session_id, data FROM {s}.heads"
        # The session row is the write lock; NO KEY so that node inserts' foreign-key checks pass.
        self.lock_session = (
            f"SELECT h.revision, h.data FROM {s}.sessions AS s LEFT JOIN {s}.heads AS h ON h.session_id = s.session_id"
            " WHERE s.session_id = %s FOR NO KEY UPDATE OF s"
        )
        self.read_head = f"SELECT revision, data FROM {s}.heads WHERE session_id = %s"
        self.insert_head = (
            f"INSERT INTO {s}.heads (session_id, revision, data) VALUES (%s, %s, %s)"
            " ON CONFLICT (session_id) DO NOTHING RETURNING revision"
        )
        self.move_head = (
            f"UPDATE {s}.heads SET revision = %s, data = %s WHERE session_id = %s AND revision = %s RETURNING revision"
        )
        # One primary-key probe per wanted id, whatever the plan: with `node_id = ANY(%s)`, a generic
        # plan cached while the session was small scanned all its nodes on every commit.
        lookup = (
            "SELECT n.node_id, n.data FROM unnest(%(ids)s::text[]) AS wanted (node_id) CROSS JOIN LATERAL"
            f" (SELECT node_id, data FROM {s}.nodes WHERE session_id = %(session)s AND node_id = wanted.node_id"
        )
        self.read_nodes = lookup + " LIMIT 1) AS n"
        self.read_visible_nodes = lookup + " AND NOT tombstoned LIMIT 1) AS n"
        self.read_all_nodes = f"SELECT data FROM {s}.nodes WHERE session_id = %s AND NOT tombstoned ORDER BY seq"
        # The walk is bounded by the session's node count, so a corrupt cycle cannot loop forever
        # (a CYCLE clause would copy the visited path at every step: quadratic in the depth).
        self.read_path = f"""
            WITH RECURSIVE path (node_id, parent_id, data, depth) AS (
                SELECT node_id, parent_id, data, 0 FROM {s}.nodes
                WHERE session_id = %(session)s AND node_id = %(leaf)s AND NOT tombstoned
                UNION ALL
                SELECT n.node_id, n.parent_id, n.data, p.depth + 1
                FROM {s}.nodes AS n JOIN path AS p ON n.session_id = %(session)s AND n.node_id = p.parent_id
                WHERE NOT n.tombstoned
                AND p.depth < (SELECT count(*) FROM {s}.nodes WHERE session_id = %(session)s)
            )
            SELECT data FROM path ORDER BY depth"""
        self.insert_nodes = (
            f"INSERT INTO {s}.nodes (session_id, node_id, parent_id, data)"
            " SELECT %s, node_id, parent_id, data"
            " FROM unnest(%s::text[], %s::text[], %s::bytea[]) WITH ORDINALITY AS n (node_id, parent_id, data, ord)"
            " ORDER BY ord"
        )
        self.clear_nodes = f"DELETE FROM {s}.nodes WHERE session_id = %s"
        self.read_ledger = f"SELECT source, model, data FROM {s}.ledger WHERE session_id = %s ORDER BY seq"
        self.read_ledger_keys = (
            f"SELECT source, model, data FROM {s}.ledger WHERE session_id = %s"
            " AND (source, model) IN (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY seq"
        )
        self.write_ledger = (
            f"INSERT INTO {s}.ledger (session_id, source, model, data)"
            " SELECT %s, source, model, data"
            " FROM unnest(%s::text[], %s::text[], %s::bytea[]) WITH ORDINALITY AS l (source, model, data, ord)"
            " ORDER BY ord ON CONFLICT (session_id, source, model) DO UPDATE SET data = excluded.data"
        )
        self.read_meta = f"SELECT data FROM {s}.meta WHERE session_id = %s"
        self.write_meta = (
            f"INSERT INTO {s}.meta (session_id, data) VALUES (%s, %s)"
            " ON CONFLICT (session_id) DO UPDATE SET data = excluded.data"
        )
        self.tombstone = (
            f"WITH hidden AS (UPDATE {s}.nodes SET tombstoned = true"
            " WHERE session_id = %s AND node_id = ANY(%s) AND NOT tombstoned RETURNING 1)"
            " SELECT count(*) FROM hidden"
        )
        self.vacuum = (
            f"WITH gone AS (DELETE FROM {s}.nodes WHERE session_id = %s AND tombstoned RETURNING 1)"
            " SELECT count(*) FROM gone"
        )
        # Blobs: re-writing a stored ref refreshes stored_at, so GC's grace period covers reuse.
        # In ref order, a fixed lock order: commits of two sessions sharing blobs cannot deadlock.
        self.write_blobs = (
            f"INSERT INTO {s}.blobs (ref, envelope)"
            " SELECT ref, envelope FROM unnest(%s::text[], %s::bytea[]) AS b (ref, envelope) ORDER BY ref"
            " ON CONFLICT (ref) DO UPDATE SET stored_at = now() RETURNING ref, (xmax = 0)"
        )
        self.read_blob = f"SELECT envelope FROM {s}.blobs WHERE ref = %s"
        self.blob_exists = f"SELECT 1 FROM {s}.blobs WHERE ref = %s"
        self.delete_blobs = (
            f"WITH gone AS (DELETE FROM {s}.blobs WHERE ref = ANY(%s) RETURNING 1) SELECT count(*) FROM gone"
        )
        # Ages on the server's clock, so clock skew between hosts and server cannot shorten the grace period.
        self.delete_old_blobs = (
            f"WITH gone AS (DELETE FROM {s}.blobs WHERE ref = ANY(%s)"
            " AND stored_at <= now() - make_interval(secs => %s) RETURNING 1) SELECT count(*) FROM gone"
        )
        self.list_blobs = f"SELECT ref, extract(epoch FROM now() - stored_at)::float8 FROM {s}.blobs"


class SessionQueries:
    """The primitives of one session as query programs (shared by the sync and the async transaction)."""

    def __init__(self, sql: Statements, session_id: str, locked: LockedHead | None) -> None:
        self._sql = sql
        self._session = session_id
        self._locked = locked

    def _head(self) -> Program[LockedHead]:
        if self._locked is not None:
            return self._locked
        rows = yield Query(self._sql.read_head, (self._session,))
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def read_head(self) -> Program[bytes | None]:
        return (yield from self._head())[1]

    def write_head(self, revision: int, data: bytes) -> Program[None]:
        """Compare-and-swap against the revision this transaction read, else :class:`HeadRevisionConflict`."""
        expected = (yield from self._head())[0]
        if expected is None:
            rows = yield Query(self._sql.insert_head, (self._session, revision, data))
        else:
            rows = yield Query(self._sql.move_head, (revision, data, self._session, expected))
        if not rows:  # only a writer that bypassed the session lock can get here
            stored = yield Query(self._sql.read_head, (self._session,))
            raise HeadRevisionConflict(expected, stored[0][0] if stored else None)
        self._locked = (revision, data)

    def read_nodes(self, node_ids: Collection[str], include_tombstoned: bool) -> Program[dict[str, bytes]]:
        statement = self._sql.read_nodes if include_tombstoned else self._sql.read_visible_nodes
        return dict((yield Query(statement, {"session": self._session, "ids": list(node_ids)})))

    def read_all_nodes(self) -> Program[list[bytes]]:
        return [row[0] for row in (yield Query(self._sql.read_all_nodes, (self._session,)))]

    def read_path(self, leaf_id: str) -> Program[list[bytes]]:
        rows = yield Query(self._sql.read_path, {"session": self._session, "leaf": leaf_id})
        return [row[0] for row in rows]

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> Program[None]:
        if nodes:
            ids, parents, data = [n.node_id for n in nodes], [n.parent_id for n in nodes], [n.data for n in nodes]
            yield Query(self._sql.insert_nodes, (self._session, ids, parents, data), fetch=False, binary=False)

    def clear_nodes(self) -> Program[None]:
        yield Query(self._sql.clear_nodes, (self._session,), fetch=False, binary=False)

    def read_ledger(self, keys: Collection[LedgerKey] | None) -> Program[dict[LedgerKey, bytes]]:
        if keys is None:
            rows = yield Query(self._sql.read_ledger, (self._session,))
        else:
            keys = list(keys)
            rows = yield Query(self._sql.read_ledger_keys, (self._session, [k[0] for k in keys], [k[1] for k in keys]))
        return {(source, model): data for source, model, data in rows}

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> Program[None]:
        if rows:
            keys = list(rows)
            params = (self._session, [k[0] for k in keys], [k[1] for k in keys], [rows[k] for k in keys])
            yield Query(self._sql.write_ledger, params, fetch=False, binary=False)

    def read_meta(self) -> Program[bytes | None]:
        rows = yield Query(self._sql.read_meta, (self._session,))
        return rows[0][0] if rows else None

    def write_meta(self, data: bytes) -> Program[None]:
        yield Query(self._sql.write_meta, (self._session, data), fetch=False, binary=False)

    def tombstone_nodes(self, node_ids: Collection[str]) -> Program[int]:
        return (yield Query(self._sql.tombstone, (self._session, list(node_ids))))[0][0]

    def vacuum(self) -> Program[int]:
        return (yield Query(self._sql.vacuum, (self._session,)))[0][0]


def lock_session(sql: Statements, session_id: str) -> Program[LockedHead]:
    """Take the session's write lock (writers on every host queue here) and read its head."""
    rows = yield Query(sql.lock_session, (session_id,))
    if not rows:  # deleted by another handle or host since this store opened it
        raise SessionDeletedError(session_id)
    return rows[0][0], rows[0][1]


def _nothing() -> Program[None]:
    return None
    yield  # a program without statements


class PostgresTransaction:
    """The primitives of one session inside one transaction (``conn`` is in ``BEGIN``)."""

    def __init__(self, conn: psycopg.Connection, sql: Statements, session_id: str, locked: LockedHead | None) -> None:
        self._conn = conn
        self._queries = SessionQueries(sql, session_id, locked)

    def read_head(self) -> bytes | None:
        return run_program(self._queries.read_head(), self._conn)

    def write_head(self, revision: int, data: bytes) -> None:
        run_program(self._queries.write_head(revision, data), self._conn)

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        return run_program(self._queries.read_nodes(node_ids, include_tombstoned), self._conn)

    def read_all_nodes(self) -> list[bytes]:
        return run_program(self._queries.read_all_nodes(), self._conn)

    def read_path(self, leaf_id: str) -> list[bytes]:
        return run_program(self._queries.read_path(leaf_id), self._conn)

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        run_program(self._queries.insert_nodes(nodes), self._conn)

    def clear_nodes(self) -> None:
        run_program(self._queries.clear_nodes(), self._conn)

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        return run_program(self._queries.read_ledger(keys), self._conn)

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        run_program(self._queries.write_ledger(rows), self._conn)

    def read_meta(self) -> bytes | None:
        return run_program(self._queries.read_meta(), self._conn)

    def write_meta(self, data: bytes) -> None:
        run_program(self._queries.write_meta(data), self._conn)

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        return run_program(self._queries.tombstone_nodes(node_ids), self._conn)

    def vacuum(self) -> int:
        return run_program(self._queries.vacuum(), self._conn)


class AsyncPostgresTransaction:
    """:class:`PostgresTransaction` on an ``AsyncConnection``: :class:`lash.store.AsyncStorageTransaction`."""

    def __init__(
        self, conn: psycopg.AsyncConnection, sql: Statements, session_id: str, locked: LockedHead | None
    ) -> None:
        self._conn = conn
        self._queries = SessionQueries(sql, session_id, locked)

    async def read_head(self) -> bytes | None:
        return await drive_program(self._queries.read_head(), self._conn)

    async def write_head(self, revision: int, data: bytes) -> None:
        await drive_program(self._queries.write_head(revision, data), self._conn)

    async def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        return await drive_program(self._queries.read_nodes(node_ids, include_tombstoned), self._conn)

    async def read_all_nodes(self) -> list[bytes]:
        return await drive_program(self._queries.read_all_nodes(), self._conn)

    async def read_path(self, leaf_id: str) -> list[bytes]:
        return await drive_program(self._queries.read_path(leaf_id), self._conn)

    async def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        await drive_program(self._queries.insert_nodes(nodes), self._conn)

    async def clear_nodes(self) -> None:
        await drive_program(self._queries.clear_nodes(), self._conn)

    async def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        return await drive_program(self._queries.read_ledger(keys), self._conn)

    async def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        await drive_program(self._queries.write_ledger(rows), self._conn)

    async def read_meta(self) -> bytes | None:
        return await drive_program(self._queries.read_meta(), self._conn)

    async def write_meta(self, data: bytes) -> None:
        await drive_program(self._queries.write_meta(data), self._conn)

    async def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        return await drive_program(self._queries.tombstone_nodes(node_ids), self._conn)

    async def vacuum(self) -> int:
        return await drive_program(self._queries.vacuum(), self._conn)


def _action(session_id: str, write: bool) -> str:
    return f"{'a write' if write else 'a read'} of session {session_id!r}"


class PostgresSessionStorage:
    """:class:`lash.store.SessionStorage` of one session: rows keyed by its id in the shared tables."""

    def __init__(self, db: Database, sql: Statements, session_id: str) -> None:
        self.db = db
        self.sql = sql
        self.session_id = session_id

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[PostgresTransaction]:
        opening = (lambda: lock_session(self.sql, self.session_id)) if write else _nothing
        with self.db.transaction(write=write, opening=opening, action=_action(self.session_id, write)) as opened:
            conn, locked = opened
            yield PostgresTransaction(conn, self.sql, self.session_id, locked)

    def close(self) -> None:
        """Nothing to release: connections belong to the backend's pool."""


class AsyncPostgresSessionStorage:
    """:class:`PostgresSessionStorage` on the async pool: :class:`lash.store.AsyncSessionStorage`."""

    def __init__(self, db: AsyncDatabase, sql: Statements, session_id: str) -> None:
        self.db = db
        self.sql = sql
        self.session_id = session_id

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[AsyncPostgresTransaction]:
        opening = (lambda: lock_session(self.sql, self.session_id)) if write else _nothing
        async with self.db.transaction(write=write, opening=opening, action=_action(self.session_id, write)) as opened:
            conn, locked = opened
            yield AsyncPostgresTransaction(conn, self.sql, self.session_id, locked)

    async def close(self) -> None:
        """Nothing to release: connections belong to the backend's pool."""


class BlobQueries:
    """The shared blob table as query programs (shared by the sync and the async blob storage)."""

    def __init__(self, sql: Statements) -> None:
        self.sql = sql

    def read(self, ref: BlobRef) -> Program[bytes | None]:
        rows = yield Query(self.sql.read_blob, (ref,))
        return rows[0][0] if rows else None

    def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> Program[list[bool]]:
        """Every envelope in one multi-row insert; True for each ref that was new."""
        unique = dict(envelopes)  # a ref repeated in one batch holds the same content
        refs = list(unique)
        inserted = dict((yield Query(self.sql.write_blobs, (refs, [unique[ref] for ref in refs]), binary=False)))
        return [inserted.pop(ref, False) for ref, _ in envelopes]  # a repeat within the batch was not new

    def exists(self, ref: BlobRef) -> Program[bool]:
        return bool((yield Query(self.sql.blob_exists, (ref,), binary=False)))

    def delete(self, refs: list[BlobRef], older_than: float | None) -> Program[int]:
        if not refs:
            return 0
        if older_than is None:
            query = Query(self.sql.delete_blobs, (refs,), binary=False)
        else:
            query = Query(self.sql.delete_old_blobs, (refs, max(0.0, time.time() - older_than)), binary=False)
        return (yield query)[0][0]

    def list(self) -> Program[list[StoredBlob]]:
        now = time.time()
        rows = yield Query(self.sql.list_blobs, binary=False)
        return [StoredBlob(BlobRef(ref), now - age) for ref, age in rows]


class PostgresBlobStorage:
    """:class:`lash.blobs.BlobStorage` in the one blob table every session shares.

    Each call is its own statement, unless this thread has a commit open, which it joins.
    """

    def __init__(self, db: Database, sql: Statements) -> None:
        self.db = db
        self.sql = sql
        self._queries = BlobQueries(sql)

    def read(self, ref: BlobRef) -> bytes | None:
        return self.db.run(lambda: self._queries.read(ref), action=f"reading blob {ref}")

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        return self.write_many([(ref, envelope)])[0]

    def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]:
        """Store every envelope in one multi-row insert; True for each ref that was new."""
        return self.db.run(lambda: self._queries.write_many(envelopes), action=_writing(envelopes))

    def exists(self, ref: BlobRef) -> bool:
        return self.db.run(lambda: self._queries.exists(ref), action=f"looking up blob {ref}")

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        """Delete ``refs`` (only those stored at or before the epoch time ``older_than``, when given)."""
        refs = list(refs)
        return self.db.run(lambda: self._queries.delete(refs, older_than), action="deleting blobs")

    def list(self) -> Iterator[StoredBlob]:
        return iter(self.db.run(self._queries.list, action="listing blobs"))


class AsyncPostgresBlobStorage:
    """:class:`PostgresBlobStorage` on the async pool (:class:`lash.aio.blobs.AsyncBlobStorage`).

    Each call is its own statement, unless the calling task has a commit open, which it joins.
    """

    def __init__(self, db: AsyncDatabase, sql: Statements) -> None:
        self.db = db
        self._queries = BlobQueries(sql)

    async def read(self, ref: BlobRef) -> bytes | None:
        return await self.db.run(lambda: self._queries.read(ref), action=f"reading blob {ref}")

    async def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]:
        return await self.db.run(lambda: self._queries.write_many(envelopes), action=_writing(envelopes))

    async def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        refs = list(refs)
        return await self.db.run(lambda: self._queries.delete(refs, older_than), action="deleting blobs")

    async def list(self) -> list[StoredBlob]:
        return await self.db.run(self._queries.list, action="listing blobs")


def _writing(envelopes: Sequence[Any]) -> str:
    return f"writing {len(dict(envelopes))} blob(s)"
