"""One lash SQLite file: created atomically, checked before use, and never "repaired".

A file is built completely under a temporary name and hard-linked into place, so a crash
can leave a stray temporary file but never a half-made database under the real name. An
existing file is only *read* until it has proven to be a lash database of a version this
code understands; anything else is reported as a lash error and left byte-for-byte as it
was. Every ``sqlite3`` error is translated into a :mod:`lash.errors` exception here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lash.errors import BackendError, CorruptRecordError, LashError, SchemaVersionError, SessionClosedError
from lash_sqlite.schema import DDL, SCHEMA_VERSION, UPGRADABLE_VERSIONS

SYNCHRONOUS = ("normal", "full")

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def translate(exc: sqlite3.Error, path: Path, busy_timeout: float) -> LashError:
    """The lash error that explains ``exc`` raised on the file at ``path``."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _BUSY_CODES:
        return BackendError(
            f"sqlite database {path} is locked by another writer and stayed locked for busy_timeout="
            f"{busy_timeout}s ({exc}); retry, or raise the backend's busy_timeout option"
        )
    if code in _CORRUPT_CODES:
        return CorruptRecordError(f"sqlite database {path}", f"{exc}; the file was left untouched")
    return BackendError(f"sqlite database {path}: {type(exc).__name__}: {exc}")


class Database:
    """A connection to one lash file, shared by threads under a lock.

    :meth:`transaction` nests: an operation started while this connection is already inside
    a transaction (a blob written during a commit) joins that transaction instead of
    starting its own, so it commits or rolls back with it.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._conn = conn
        self._lock = threading.RLock()
        self._depth = 0
        self._writing = False
        self._closed = False

    @contextmanager
    def translating(self) -> Iterator[None]:
        """Turn ``sqlite3`` errors raised in the block into lash errors."""
        try:
            yield
        except sqlite3.Error as exc:
            if self._closed:
                raise SessionClosedError(f"sqlite database {self.path} is closed") from exc
            raise translate(exc, self.path, self.busy_timeout) from exc

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A transaction: ``BEGIN IMMEDIATE`` to write, a deferred snapshot to read."""
        with self._lock:
            if self._closed:
                raise SessionClosedError(f"sqlite database {self.path} is closed")
            if self._depth:
                if write and not self._writing:
                    raise BackendError(f"sqlite database {self.path}: cannot write inside a read transaction")
                self._depth += 1
                try:
                    with self.translating():
                        yield self._conn
                finally:
                    self._depth -= 1
                return
            with self.translating():
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            self._depth, self._writing = 1, write
            try:
                with self.translating():
                    yield self._conn
                    self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            finally:
                self._depth, self._writing = 0, False

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it, so deleted rows leave no copy in ``-wal``.

        Skipped inside a transaction. While another connection reads, SQLite checkpoints
        what it can; the rest goes at a later checkpoint or when the last connection closes.
        """
        with self._lock:
            if self._closed or self._depth:
                return
            with self.translating():
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def release_free_pages(self) -> None:
        """Give the pages freed by deletes back to the file system (files made with ``auto_vacuum = INCREMENTAL``).

        Skipped inside a transaction; a no-op on older files without auto-vacuum.
        """
        with self._lock:
            if self._closed or self._depth:
                return
            with self.translating():
                # executescript steps the pragma to its end; execute() would free a single page.
                self._conn.executescript("PRAGMA incremental_vacuum")

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:  # the original error is the one worth raising; the txn dies with the connection
            pass

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def open_database(
    path: Path,
    *,
    kind: str,
    session_id: str | None,
    create: bool,
    busy_timeout: float,
    synchronous: str = "normal",
) -> Database | None:
    """The lash file at ``path``, created if absent and ``create``; None if absent otherwise.

    ``session_id`` None accepts a session file of any id (listing); otherwise the file must
    hold exactly that session.
    """
    if not path.exists():
        if not create:
            return None
        _create(path, kind, session_id)
    try:
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=rw",  # never create a file by accident
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,  # lash issues BEGIN/COMMIT itself
            check_same_thread=False,  # shared by threads, guarded by Database's lock
        )
    except sqlite3.Error as exc:
        if not path.exists() and not create:  # deleted meanwhile
            return None
        raise translate(exc, path, busy_timeout) from exc
    db = Database(path, conn, busy_timeout)
    try:
        with db.translating():
            _check(conn, path, kind, session_id)
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten with zeros, not left in free space
    except BaseException:
        db.close()
        raise
    return db


def _check(conn: sqlite3.Connection, path: Path, kind: str, session_id: str | None) -> None:
    """Refuse anything but a lash file of ``kind`` (and ``session_id``) this code can read."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(version, SCHEMA_VERSION, f"sqlite database {path}")
    has_identity = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lash_identity'")
    if version < 1 or has_identity.fetchone() is None:
        raise CorruptRecordError(f"sqlite database {path}", "not a lash database; the file was left untouched")
    row = conn.execute("SELECT kind, session_id FROM lash_identity WHERE id = 1").fetchone()
    if row is None or row[0] != kind:
        found = "no identity row" if row is None else f"a lash {row[0]!r} file"
        raise CorruptRecordError(f"sqlite database {path}", f"expected a lash {kind!r} file, found {found}")
    if session_id is not None and row[1] != session_id:
        raise BackendError(f"sqlite database {path} holds session {row[1]!r}, not {session_id!r}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    if version in UPGRADABLE_VERSIONS:  # same tables: the stamp keeps older lash from misreading new records
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create(path: Path, kind: str, session_id: str | None) -> None:
    """Build the file under a temporary name, then link it into place unless another process won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # No journal and no syncs while building: a file that fails half-way is never linked.
            # One fsync below makes the finished file durable before it gets its real name.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table; freed pages can be returned
            conn.execute("BEGIN IMMEDIATE")
            for statement in DDL[kind].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO lash_identity (id, kind, session_id) VALUES (1, ?, ?)", (kind, session_id))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode = WAL")  # stored in the file: every connection uses WAL
        finally:
            conn.close()
        _fsync(tmp)
        with contextlib.suppress(FileExistsError):  # created concurrently by another process: use theirs
            os.link(tmp, path)
    except sqlite3.Error as exc:
        raise translate(exc, path, 0.0) from exc
    except OSError as exc:
        raise BackendError(f"cannot create sqlite database {path}: {exc}") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)  # Windows flushes only handles opened for writing
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
