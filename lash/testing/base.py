"""Fixtures and hooks shared by every part of :class:`lash.testing.BackendTests`."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from lash.blobs import BlobStore
from lash.model import BlobRef
from lash.store import Backend, SessionStore
from lash.testing.blob_store import Tamper, tamper_envelope_store
from lash.testing.builders import SessionWriter

SESSION_ID = "conformance"


class BackendFixtures:
    """The ``backend`` fixture a subclass overrides, the hooks it may override, and helpers."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        """A fresh, empty backend whose GC grace period is zero. Subclasses must override this."""
        raise NotImplementedError("override the `backend` fixture to yield a fresh, empty lash.store.Backend")

    @pytest.fixture
    def store(self, backend: Backend) -> Iterator[SessionStore]:
        """The store of session :data:`SESSION_ID`, closed after the test."""
        store = backend.open_session(SESSION_ID)
        assert store is not None, "open_session(create=True) must return a store"
        yield store
        store.close()

    @pytest.fixture
    def writer(self, store: SessionStore) -> SessionWriter:
        """Commits to :func:`store`, tracking the head revision."""
        return SessionWriter(store)

    @pytest.fixture
    def blob_store(self, store: SessionStore) -> BlobStore:
        """The blob store a session commits its snapshots to (runs :class:`BlobStoreTests` on it)."""
        return store.blobs

    @pytest.fixture
    def tamper(self, backend: Backend, store: SessionStore) -> Tamper:
        """``tamper(ref)`` overwrites a blob of :func:`store` through :meth:`tamper_blob`."""
        return functools.partial(self.tamper_blob, backend, store)

    # -- hooks ------------------------------------------------------------------------------

    def reopen(self, backend: Backend) -> Backend:
        """A backend over the same storage as ``backend``.

        The default returns ``backend`` itself (right for in-memory backends). Durable
        backends close it and build a new one on the same files/database/bucket; the test
        closes the returned backend, and the fixture closes the original one again, so
        ``close()`` must be idempotent.
        """
        return backend

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        """Overwrite the stored bytes of ``ref`` behind ``store``'s back.

        The default works when ``store.blobs`` is an :class:`~lash.blobs.EnvelopeBlobStore`
        whose ``.storage`` has ``tamper(ref, envelope)``; otherwise the tests that need it
        skip and ask you to override this hook.
        """
        tamper_envelope_store(store.blobs, ref)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def open_store(backend: Backend, session_id: str, *, create: bool = True) -> SessionStore:
        """``backend.open_session`` that insists on a store."""
        store = backend.open_session(session_id, create=create)
        assert store is not None, f"open_session({session_id!r}, create={create}) returned None"
        return store
