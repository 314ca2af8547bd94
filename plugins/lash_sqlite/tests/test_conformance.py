"""lash-sqlite passes the conformance suites every backend and blob store runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend, sqlite_blob_store

from lash.blobs import BlobProfile, BlobStore, seal
from lash.model import BlobKind, BlobRef
from lash.store import Backend, SessionStore
from lash.testing import AsyncBackendTests, BackendTests
from lash.testing.blob_store import BlobStoreTests
from lash.testing.encryption import encrypt_if


def tamper_blob_row(db_file: Path, ref: BlobRef) -> None:
    """Overwrite blob ``ref`` in ``db_file`` through a separate connection, behind lash's back."""
    envelope = seal(b"bytes that do not hash to the ref", BlobKind.GENERIC, (), BlobProfile.LOW_LATENCY)
    conn = sqlite3.connect(db_file)
    try:
        with conn:
            assert conn.execute("UPDATE blobs SET envelope = ? WHERE ref = ?", (envelope, ref)).rowcount == 1
    finally:
        conn.close()


class TestSqliteBackend(BackendTests, AsyncBackendTests):
    @pytest.fixture(params=["plain", "encrypted"])
    def backend(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteBackend]:
        backend = encrypt_if(request.param == "encrypted", SqliteBackend(path=tmp_path / "sessions"))
        yield backend
        backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, SqliteBackend)
        backend.close()
        reopened = SqliteBackend(path=backend.path)
        if backend.encryption is not None:
            reopened.attach_encryption(backend.encryption)
        return reopened

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        assert isinstance(backend, SqliteBackend)
        tamper_blob_row(backend.session_path(store.session_id), ref)


class TestSqliteBlobStore(BlobStoreTests):
    @pytest.fixture
    def blob_store(self, tmp_path: Path) -> BlobStore:
        return sqlite_blob_store(path=tmp_path / "blobs.db")

    def tamper_stored_blob(self, blob_store: BlobStore, ref: BlobRef) -> None:
        tamper_blob_row(blob_store.storage.db.path, ref)  # type: ignore[attr-defined]
