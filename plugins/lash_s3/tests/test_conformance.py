"""lash-s3 passes the shared conformance suites, in-process against moto.

The S3 store runs :class:`BlobStoreTests` on its own, and :class:`BackendTests` as the blob
store of the SQLite backend (heads and nodes there, blobs in S3).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lash_s3 import S3BlobStorage, s3_blob_store
from lash_sqlite import SqliteBackend

from lash.blobs import BlobProfile, BlobStore, EnvelopeBlobStore, seal
from lash.model import BlobKind, BlobRef
from lash.store import Backend, SessionStore
from lash.testing import BackendTests, BlobStoreTests
from lash.testing.blob_store import TAMPERED_CONTENT


def overwrite_object(blobs: BlobStore, ref: BlobRef) -> None:
    """Replace the object of ``ref`` with a valid envelope of other content, with a raw client."""
    assert isinstance(blobs, EnvelopeBlobStore) and isinstance(blobs.storage, S3BlobStorage)
    storage = blobs.storage
    envelope = seal(TAMPERED_CONTENT, BlobKind.GENERIC, (), BlobProfile.LOW_LATENCY)
    storage.client.put_object(Bucket=storage.bucket, Key=storage.key(ref), Body=envelope)


class TestS3BlobStore(BlobStoreTests):
    @pytest.fixture
    def blob_store(self, mocked_store: EnvelopeBlobStore) -> BlobStore:
        return mocked_store

    def tamper_stored_blob(self, blob_store: BlobStore, ref: BlobRef) -> None:
        overwrite_object(blob_store, ref)


class TestSqliteWithS3Blobs(BackendTests):
    """The backend contract with heads and nodes in SQLite and every blob in S3."""

    @staticmethod
    def compose(path: Path, blobs: BlobStore) -> SqliteBackend:
        backend = SqliteBackend(path=path)
        backend.gc_grace_seconds = 0  # the contract's GC tests expect immediate collection
        backend.attach_blob_store(blobs)
        return backend

    @pytest.fixture
    def backend(self, tmp_path: Path, mocked_s3: Any, bucket: str) -> Iterator[Backend]:
        backend = self.compose(tmp_path / "sessions", s3_blob_store(bucket=bucket, create_bucket=True))
        yield backend
        backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, SqliteBackend) and backend.blobs is not None
        backend.close()
        return self.compose(backend.path, backend.blobs)

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        overwrite_object(store.blobs, ref)
