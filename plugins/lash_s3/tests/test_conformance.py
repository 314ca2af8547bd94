"""lash-s3 passes the shared conformance suites, in-process against moto.

The S3 store runs :class:`BlobStoreTests` on its own and :class:`BackendTests` as the blob
store of the SQLite backend (heads and nodes there, blobs in S3); the ``s3`` backend runs
:class:`BackendTests` and the model-based state machine with everything in the bucket.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lash_s3 import S3Backend, S3BlobStorage, s3_backend, s3_blob_store
from lash_sqlite import SqliteBackend

from lash.blobs import BlobProfile, BlobStore, EnvelopeBlobStore, seal
from lash.model import BlobKind, BlobRef
from lash.store import Backend, SessionStore
from lash.testing import BackendTests, BlobStoreTests
from lash.testing.blob_store import TAMPERED_CONTENT
from lash.testing.faults import SCENARIOS, FaultInjectionTests, Scenario
from lash.testing.harness import BackendFactory, Reopen
from lash.testing.stateful import BackendStateMachineTests


def overwrite_object(blobs: BlobStore, ref: BlobRef) -> None:
    """Replace the object of ``ref`` with a valid envelope of other content, with a raw client."""
    assert isinstance(blobs, EnvelopeBlobStore) and isinstance(blobs.storage, S3BlobStorage)
    storage = blobs.storage
    envelope = seal(TAMPERED_CONTENT, BlobKind.GENERIC, (), BlobProfile.LOW_LATENCY)
    storage.client.put_object(Bucket=storage.bucket, Key=storage.key(ref), Body=envelope)


class TestS3BlobStore(BlobStoreTests):
    stored_at_resolution = 1.0  # LastModified is whole seconds

    @pytest.fixture
    def blob_store(self, mocked_store: EnvelopeBlobStore) -> BlobStore:
        assert isinstance(mocked_store.storage, S3BlobStorage)
        mocked_store.storage.refresh_after_seconds = 0  # every reuse restarts the age (the GC race tests)
        return mocked_store

    def tamper_stored_blob(self, blob_store: BlobStore, ref: BlobRef) -> None:
        overwrite_object(blob_store, ref)


class TestSqliteWithS3Blobs(BackendTests):
    """The backend contract with heads and nodes in SQLite and every blob in S3."""

    stored_at_resolution = 1.0

    @staticmethod
    def compose(path: Path, blobs: BlobStore) -> SqliteBackend:
        backend = SqliteBackend(path=path)
        backend.gc_grace_seconds = 0  # the contract's GC tests expect immediate collection
        backend.attach_blob_store(blobs)
        return backend

    @pytest.fixture
    def backend(self, tmp_path: Path, mocked_s3: Any, bucket: str) -> Iterator[Backend]:
        blobs = s3_blob_store(bucket=bucket, create_bucket=True, refresh_after_seconds=0)
        backend = self.compose(tmp_path / "sessions", blobs)
        yield backend
        backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, SqliteBackend) and backend.blobs is not None
        backend.close()
        return self.compose(backend.path, backend.blobs)

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        overwrite_object(store.blobs, ref)


def bucket_backend(bucket: str, *, create_bucket: bool = False) -> S3Backend:
    """The ``s3`` backend on ``bucket`` with no grace period (the contract's GC tests collect at once)."""
    return s3_backend(
        bucket=bucket, prefix="lash", create_bucket=create_bucket, gc_grace_seconds=0, refresh_after_seconds=0
    )


class TestS3Backend(BackendTests):
    """The backend contract with heads, nodes, ledger, meta and blobs all in one bucket."""

    stored_at_resolution = 1.0

    @pytest.fixture
    def backend(self, mocked_s3: Any, bucket: str) -> Iterator[Backend]:
        backend = bucket_backend(bucket, create_bucket=True)
        yield backend
        backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, S3Backend)
        backend.close()
        return bucket_backend(backend.objects.bucket)

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        overwrite_object(store.blobs, ref)


def reopen_on_same_prefix(backend: Backend) -> Backend:
    """A new ``s3`` backend on the bucket and prefix of ``backend`` (sharing its client)."""
    assert isinstance(backend, S3Backend)
    backend.close()
    return S3Backend(backend.objects.client, backend.objects.bucket, backend.prefix, gc_grace_seconds=0)


class FreshS3Backends:
    """Fresh ``s3`` backends: one bucket, one client, a key prefix each (a client costs more than a sequence)."""

    @pytest.fixture
    def backend_factory(self, mocked_s3: Any, bucket: str) -> BackendFactory:
        client = bucket_backend(bucket, create_bucket=True).objects.client
        numbers = itertools.count()
        return lambda: S3Backend(client, bucket, f"run-{next(numbers)}", gc_grace_seconds=0)

    @pytest.fixture
    def reopen_backend(self) -> Reopen:
        return reopen_on_same_prefix

    def reopen(self, backend: Backend) -> Backend:
        return reopen_on_same_prefix(backend)


class TestS3BackendStateful(FreshS3Backends, BackendStateMachineTests):
    """Random operation sequences against the reference model."""

    state_machine_budget = 0.02  # of the profile's max_examples: 1 sequence under `ci`, 40 under `thorough`


COMMITS = [scenario for scenario in SCENARIOS if scenario.name in ("first commit", "commit")]


class TestS3BackendFaults(FreshS3Backends, FaultInjectionTests):
    """A fault at any primitive of a commit (state read, blob or segment upload, the conditional put).

    Only the commit scenarios: they exercise this backend's own write path; tombstone, vacuum
    and GC go through the same conditional put and are covered by the conformance suite.
    """

    @pytest.mark.parametrize("scenario", COMMITS, ids=[s.name for s in COMMITS])
    def test_fault_at_any_primitive_leaves_old_or_new_state(
        self, backend_factory: BackendFactory, reopen_backend: Reopen, scenario: Scenario
    ) -> None:
        super().test_fault_at_any_primitive_leaves_old_or_new_state(backend_factory, reopen_backend, scenario)
