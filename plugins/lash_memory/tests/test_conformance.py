"""The memory backend and blob store meet the whole lash storage contract."""

from collections.abc import Iterator

import pytest
from lash_memory import MemoryBackend, memory_blob_store

from lash.blobs import BlobStore
from lash.testing import AsyncBackendTests, BackendTests, BlobStoreTests
from lash.testing.encryption import encrypt_if


class TestMemoryBackend(BackendTests, AsyncBackendTests):
    @pytest.fixture(params=["plain", "encrypted"])
    def backend(self, request: pytest.FixtureRequest) -> Iterator[MemoryBackend]:
        backend = encrypt_if(request.param == "encrypted", MemoryBackend(gc_grace_seconds=0))
        yield backend
        backend.close()


class TestMemoryBlobStore(BlobStoreTests):
    @pytest.fixture
    def blob_store(self) -> BlobStore:
        return memory_blob_store()
