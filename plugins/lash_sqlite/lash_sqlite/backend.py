"""The ``sqlite`` backend (one file per session) and the standalone ``sqlite`` blob store."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.errors import BackendError
from lash.store import StorageBackend
from lash_sqlite.database import SYNCHRONOUS, Database, open_database
from lash_sqlite.schema import BLOB_STORE, SESSION
from lash_sqlite.storage import SqliteBlobStorage, SqliteSessionStorage

DEFAULT_PATH = ".lash/sessions"
DEFAULT_BLOB_STORE_PATH = ".lash/blobs.db"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SESSION_FILE = re.compile(r".*-[0-9a-f]{16}\.db")


def db_file_name(session_id: str) -> str:
    """``<safe id>-<first 16 hex of sha256(id)>.db``: readable, and unique whatever the id.

    The safe id keeps ``[A-Za-z0-9_-]`` (anything else becomes ``_``), is trimmed of ``_``
    and cut to 80 characters; the hash keeps ids that sanitise alike apart. A hostile id
    (``../x``, unicode, 1000 characters) can never name a path outside the directory.
    """
    safe = _UNSAFE.sub("_", session_id).strip("_")[:80].rstrip("_") or "session"
    return f"{safe}-{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:16]}.db"


def _check_options(blob_profile: str, busy_timeout: float, synchronous: str) -> tuple[BlobProfile, float, str]:
    if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float) or busy_timeout < 0:
        raise ValueError(f"busy_timeout must be a number of seconds >= 0, not {busy_timeout!r}")
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
    return BlobProfile(blob_profile), float(busy_timeout), synchronous


class SqliteBackend(StorageBackend):
    """Sessions as SQLite files in one directory; each file also holds that session's blobs.

    Options: ``path`` (the directory, ``.lash/sessions``), ``blob_profile`` (``balanced``),
    ``busy_timeout`` (seconds a writer waits for another's lock, 5), ``synchronous``
    (``normal``: a power loss may lose the last commits but never corrupts; ``full``: every
    commit is fsynced).
    """

    blobs_per_session = True

    def __init__(
        self,
        *,
        path: str | Path = DEFAULT_PATH,
        blob_profile: str = BlobProfile.BALANCED,
        busy_timeout: float = 5.0,
        synchronous: str = "normal",
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.blob_profile, self.busy_timeout, self.synchronous = _check_options(blob_profile, busy_timeout, synchronous)

    def __repr__(self) -> str:
        return f"<SqliteBackend path={str(self.path)!r}>"

    def session_path(self, session_id: str) -> Path:
        """The database file of ``session_id``."""
        return self.path / db_file_name(session_id)

    def _open(self, path: Path, session_id: str | None, *, create: bool) -> Database | None:
        return open_database(
            path,
            kind=SESSION,
            session_id=session_id,
            create=create,
            busy_timeout=self.busy_timeout,
            synchronous=self.synchronous,
        )

    def _open_storage(self, session_id: str, *, create: bool) -> SqliteSessionStorage | None:
        db = self._open(self.session_path(session_id), session_id, create=create)
        return None if db is None else SqliteSessionStorage(db, self.blob_profile)

    def _session_blobs(self, storage: SqliteSessionStorage) -> EnvelopeBlobStore:  # type: ignore[override]
        return EnvelopeBlobStore(SqliteBlobStorage(storage.db), self.blob_profile)

    def _session_ids(self) -> list[str]:
        if not self.path.is_dir():
            return []
        ids = []
        for file in sorted(self.path.iterdir()):
            if not _SESSION_FILE.fullmatch(file.name):
                continue
            db = self._open(file, None, create=False)
            if db is None:  # deleted meanwhile
                continue
            try:
                with db.transaction(write=False) as conn:
                    ids.append(conn.execute("SELECT session_id FROM lash_identity WHERE id = 1").fetchone()[0])
            finally:
                db.close()
        return ids

    def _delete_storage(self, session_id: str) -> bool:
        path = self.session_path(session_id)
        existed = path.exists()
        try:
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                file.unlink(missing_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot delete session {session_id!r} ({path}): {exc}") from exc
        return existed


def sqlite_blob_store(
    *, path: str | Path = DEFAULT_BLOB_STORE_PATH, blob_profile: str = BlobProfile.BALANCED, busy_timeout: float = 5.0
) -> EnvelopeBlobStore:
    """A blob store in one SQLite file (``[blobs] backend = "sqlite"``), shareable by processes."""
    profile, timeout, _ = _check_options(blob_profile, busy_timeout, "normal")
    db = open_database(Path(path), kind=BLOB_STORE, session_id=None, create=True, busy_timeout=timeout)
    assert db is not None
    return EnvelopeBlobStore(SqliteBlobStorage(db), profile)
