"""lash-postgres passes the conformance suites every backend and blob store runs, on a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lash_postgres import PostgresBackend
from lash_postgres.testing import PostgresServer
from psycopg import sql

from lash.blobs import BlobProfile, BlobStore, EnvelopeBlobStore, seal
from lash.model import BlobKind, BlobRef
from lash.store import Backend, SessionStore
from lash.testing import AsyncBackendTests, BackendTests, BlobStoreTests
from lash.testing.blob_store import TAMPERED_CONTENT
from lash.testing.encryption import encrypt_if
from lash.testing.faults import FaultInjectionTests
from lash.testing.harness import BackendFactory
from lash.testing.stateful import BackendStateMachineTests

from .conftest import empty


def tamper_blob_row(server: PostgresServer, schema: str, ref: BlobRef) -> None:
    """Overwrite blob ``ref`` through a separate connection, behind lash's back."""
    envelope = seal(TAMPERED_CONTENT, BlobKind.GENERIC, (), BlobProfile.LOW_LATENCY)
    statement = sql.SQL("UPDATE {}.blobs SET envelope = %s WHERE ref = %s").format(sql.Identifier(schema))
    with server.connect() as conn:
        assert conn.execute(statement, (envelope, ref)).rowcount == 1


class TestPostgresBackend(BackendTests, AsyncBackendTests):
    """The contract, plain and encrypted, through the sync API and through the native async face."""

    @pytest.fixture(params=["plain", "encrypted"])
    def backend(
        self, request: pytest.FixtureRequest, postgres_server: PostgresServer, empty_schema: str
    ) -> Iterator[PostgresBackend]:
        backend = PostgresBackend(dsn=postgres_server.dsn(), schema=empty_schema, pool_max=4, gc_grace_seconds=0)
        yield encrypt_if(request.param == "encrypted", backend)
        backend.close()

    @pytest.fixture(autouse=True)
    def _server(self, postgres_server: PostgresServer) -> None:
        self.server = postgres_server

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, PostgresBackend)
        backend.close()
        reopened = PostgresBackend(dsn=self.server.dsn(), schema=backend.schema, pool_max=4, gc_grace_seconds=0)
        if backend.encryption is not None:
            reopened.attach_encryption(backend.encryption)
        return reopened

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        assert isinstance(backend, PostgresBackend)
        tamper_blob_row(self.server, backend.schema, ref)


class TestPostgresBlobTable(BlobStoreTests):
    """The shared blob table on its own (``Backend.blobs``)."""

    @pytest.fixture
    def blob_store(self, postgres_server: PostgresServer, empty_schema: str) -> Iterator[BlobStore]:
        self.server, self.schema = postgres_server, empty_schema
        backend = PostgresBackend(dsn=postgres_server.dsn(), schema=empty_schema, pool_max=4)
        assert isinstance(backend.blobs, EnvelopeBlobStore)
        yield backend.blobs
        backend.close()

    def tamper_stored_blob(self, blob_store: BlobStore, ref: BlobRef) -> None:
        tamper_blob_row(self.server, self.schema, ref)


class FreshBackends:
    """A factory of empty backends: each call empties the module's schema (no DDL per backend)."""

    @pytest.fixture
    def backend_factory(self, postgres_server: PostgresServer, shared_schema: str) -> Iterator[BackendFactory]:
        self.server = postgres_server
        made: list[PostgresBackend] = []

        def fresh() -> PostgresBackend:
            empty(postgres_server, shared_schema)
            made.append(
                PostgresBackend(dsn=postgres_server.dsn(), schema=shared_schema, pool_max=2, gc_grace_seconds=0)
            )
            return made[-1]

        yield fresh
        for backend in made:
            backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert isinstance(backend, PostgresBackend)
        backend.close()
        return PostgresBackend(dsn=self.server.dsn(), schema=backend.schema, pool_max=2, gc_grace_seconds=0)


class TestPostgresStateful(FreshBackends, BackendStateMachineTests):
    """The hypothesis model test of every backend, unchanged, on the real server."""

    state_machine_budget = 0.04  # two sequences (ci profile): each step is several round trips to the server


class TestPostgresFaults(FreshBackends, FaultInjectionTests):
    """A failure at any primitive operation leaves the old or the new state, never a mix."""
