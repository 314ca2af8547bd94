"""lash's storage primitives over one SQLite file.

:class:`SqliteTransaction` is :class:`lash.store.StorageTransaction` as SQL: every statement
touches only the rows it names (by primary key or unique index), so a commit costs
O(new nodes) whatever the session's length. :class:`SqliteBlobStorage` keeps envelopes in
the same file and, through :class:`~lash_sqlite.database.Database`, joins a transaction
already open on the connection, so blobs written by a commit land in the commit.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import TypeVar

from lash.blobs import BlobProfile, StoredBlob, compress_node_record
from lash.model import BlobRef
from lash.store import LedgerKey, StoredNode
from lash_sqlite.database import Database

T = TypeVar("T")

_CHUNK = 500
"""Bound parameters per ``IN (...)`` list, well under every SQLite build's limit."""

_READ_PATH = """
WITH RECURSIVE path (node_id, parent_id, data) AS (
    SELECT node_id, parent_id, data FROM nodes WHERE node_id = ? AND tombstoned = 0
    UNION ALL
    SELECT n.node_id, n.parent_id, n.data FROM nodes AS n JOIN path AS p ON n.node_id = p.parent_id
    WHERE n.tombstoned = 0
    LIMIT (SELECT coalesce(max(seq), 0) FROM nodes)  -- a corrupt cycle cannot loop forever
)
SELECT data FROM path
"""


def _chunks(items: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk


def _marks(chunk: Sequence[object]) -> str:
    return ",".join("?" * len(chunk))


class SqliteTransaction:
    """The primitives of one session inside one SQLite transaction.

    Node records are stored compressed as ``profile`` says (:func:`lash.blobs.compress_node_record`);
    reads hand the stored bytes back as they are, and :func:`lash.codec.unpack` expands them.
    """

    def __init__(self, conn: sqlite3.Connection, profile: BlobProfile = BlobProfile.LOW_LATENCY) -> None:
        self._conn = conn
        self._profile = profile

    def read_head(self) -> bytes | None:
        row = self._conn.execute("SELECT data FROM head WHERE id = 1").fetchone()
        return None if row is None else row[0]

    def write_head(self, revision: int, data: bytes) -> None:
        self._conn.execute(
            "INSERT INTO head (id, revision, data) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, data = excluded.data",
            (revision, data),
        )

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        visible = "" if include_tombstoned else " AND tombstoned = 0"
        found: dict[str, bytes] = {}
        for chunk in _chunks(node_ids):
            sql = f"SELECT node_id, data FROM nodes WHERE node_id IN ({_marks(chunk)}){visible}"
            found.update(self._conn.execute(sql, chunk).fetchall())
        return found

    def read_all_nodes(self) -> list[bytes]:
        return [row[0] for row in self._conn.execute("SELECT data FROM nodes WHERE tombstoned = 0 ORDER BY seq")]

    def read_path(self, leaf_id: str) -> list[bytes]:
        return [row[0] for row in self._conn.execute(_READ_PATH, (leaf_id,))]

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        self._conn.executemany(
            "INSERT INTO nodes (node_id, parent_id, data) VALUES (?, ?, ?)",
            [(n.node_id, n.parent_id, compress_node_record(n.data, self._profile)) for n in nodes],
        )

    def clear_nodes(self) -> None:
        self._conn.execute("DELETE FROM nodes")

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        if keys is None:
            rows = self._conn.execute("SELECT source, model, data FROM ledger ORDER BY seq").fetchall()
        else:
            sql = "SELECT source, model, data FROM ledger WHERE source = ? AND model = ?"
            rows = [row for key in keys for row in self._conn.execute(sql, key).fetchall()]
        return {(source, model): data for source, model, data in rows}

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        self._conn.executemany(
            "INSERT INTO ledger (source, model, data) VALUES (?, ?, ?) "
            "ON CONFLICT (source, model) DO UPDATE SET data = excluded.data",
            [(source, model, data) for (source, model), data in rows.items()],
        )

    def read_meta(self) -> bytes | None:
        row = self._conn.execute("SELECT data FROM meta WHERE id = 1").fetchone()
        return None if row is None else row[0]

    def write_meta(self, data: bytes) -> None:
        self._conn.execute(
            "INSERT INTO meta (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data", (data,)
        )

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        hidden = 0
        for chunk in _chunks(node_ids):
            sql = f"UPDATE nodes SET tombstoned = 1 WHERE node_id IN ({_marks(chunk)}) AND tombstoned = 0"
            hidden += self._conn.execute(sql, chunk).rowcount
        return hidden

    def vacuum(self) -> int:
        return self._conn.execute("DELETE FROM nodes WHERE tombstoned = 1").rowcount


class SqliteSessionStorage:
    """:class:`lash.store.SessionStorage` of one session file, storing node records as ``profile`` says."""

    def __init__(self, db: Database, profile: BlobProfile = BlobProfile.LOW_LATENCY) -> None:
        self.db = db
        self.profile = profile

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[SqliteTransaction]:
        with self.db.transaction(write=write) as conn:
            yield SqliteTransaction(conn, self.profile)

    def scrub(self) -> None:
        """After a vacuum or GC: the freed pages go back to the file system and no copy of a deleted row
        stays in the WAL (``secure_delete`` zeroed the pages)."""
        self.db.release_free_pages()
        self.db.checkpoint()

    def close(self) -> None:
        self.db.close()


class SqliteBlobStorage:
    """:class:`lash.blobs.BlobStorage` in the ``blobs`` table of a lash file.

    Each call is its own short transaction, unless the connection is already inside one
    (a commit), which it then joins.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self, ref: BlobRef) -> bytes | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT envelope FROM blobs WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else row[0]

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        return self.write_many([(ref, envelope)])[0]

    def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]:
        """:meth:`write` each, in one statement when all are new (a commit's execution state and manifest)."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            insert = "INSERT INTO blobs (ref, envelope, stored_at) VALUES (?, ?, ?) ON CONFLICT (ref) DO NOTHING"
            rows = [(ref, envelope, now) for ref, envelope in envelopes]
            inserted = conn.executemany(insert, rows).rowcount
            if inserted == len(rows):
                return [True] * len(rows)
            # Some were stored already: refresh their age (the new ones get the same stamp) and say which.
            conn.executemany("UPDATE blobs SET stored_at = ? WHERE ref = ?", [(now, ref) for ref, _ in envelopes])
            new: set[str] = set()
            if inserted:  # new rows got the highest seqs of the table
                refs = list(dict.fromkeys(ref for ref, _ in envelopes))
                sql = f"SELECT ref FROM blobs WHERE ref IN ({_marks(refs)}) ORDER BY seq DESC LIMIT ?"
                new = {row[0] for row in conn.execute(sql, (*refs, inserted))}
        written = []
        for ref, _ in envelopes:
            written.append(ref in new)
            new.discard(ref)  # a ref given twice is new once
        return written

    def exists(self, ref: BlobRef) -> bool:
        with self.db.transaction(write=False) as conn:
            return conn.execute("SELECT 1 FROM blobs WHERE ref = ?", (ref,)).fetchone() is not None

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        age = "" if older_than is None else " AND stored_at <= ?"
        tail = () if older_than is None else (older_than,)
        deleted = 0
        with self.db.transaction(write=True) as conn:
            for chunk in _chunks(refs):
                sql = f"DELETE FROM blobs WHERE ref IN ({_marks(chunk)}){age}"
                deleted += conn.execute(sql, (*chunk, *tail)).rowcount
        if deleted:  # a standalone blob store; inside a session's GC the session's scrub does it
            self.db.release_free_pages()
        return deleted

    def list(self) -> Iterator[StoredBlob]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT ref, stored_at FROM blobs ORDER BY seq").fetchall()
        return iter([StoredBlob(BlobRef(ref), stored_at) for ref, stored_at in rows])
