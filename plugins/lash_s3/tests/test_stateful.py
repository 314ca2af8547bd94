"""SQLite heads and nodes with every blob in S3 (in-process moto): the model-based and fault suites.

Each backend gets its own SQLite directory and its own key prefix in one bucket, so GC of
one sequence never sees another's blobs. Reopening builds a new SQLite backend on the same
directory with the same S3 blob store attached.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from lash_s3 import S3BlobStorage, s3_blob_store
from lash_sqlite import SqliteBackend

from lash.blobs import BlobStore, EnvelopeBlobStore
from lash.store import Backend
from lash.testing.faults import FaultInjectionTests
from lash.testing.harness import BackendFactory, Reopen
from lash.testing.stateful import BackendStateMachineTests


def sqlite_with_s3_blobs(path: Path, blobs: BlobStore) -> SqliteBackend:
    backend = SqliteBackend(path=path)
    backend.gc_grace_seconds = 0  # the suites expect every unreferenced blob to be collected at once
    backend.attach_blob_store(blobs)
    return backend


def reopen_sqlite_with_s3_blobs(backend: Backend) -> Backend:
    assert isinstance(backend, SqliteBackend) and backend.blobs is not None
    backend.close()
    return sqlite_with_s3_blobs(backend.path, backend.blobs)


class SqliteWithS3Blobs:
    """Fresh composed backends: a SQLite directory and an S3 prefix each."""

    @pytest.fixture
    def backend_factory(self, tmp_path: Path, mocked_s3: Any, bucket: str) -> BackendFactory:
        numbers = itertools.count()
        first = s3_blob_store(bucket=bucket, create_bucket=True, refresh_after_seconds=0)
        assert isinstance(first.storage, S3BlobStorage)
        client = first.storage.client  # one client for every backend: building one costs more than a sequence

        def factory() -> Backend:
            n = next(numbers)
            blobs = EnvelopeBlobStore(S3BlobStorage(client, bucket, f"run-{n}", refresh_after_seconds=0))
            return sqlite_with_s3_blobs(tmp_path / f"backend-{n}", blobs)

        return factory

    @pytest.fixture
    def reopen_backend(self) -> Reopen:
        return reopen_sqlite_with_s3_blobs


class TestSqliteWithS3BlobsStateful(SqliteWithS3Blobs, BackendStateMachineTests):
    state_machine_budget = 0.06  # of the profile's max_examples: 3 sequences under `ci`, 120 under `thorough`


class TestSqliteWithS3BlobsFaults(SqliteWithS3Blobs, FaultInjectionTests):
    fault_scenarios = frozenset({"first commit", "commit", "gc"})  # tombstone and vacuum touch no blob
