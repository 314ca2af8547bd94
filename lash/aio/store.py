"""The async face of the shared store semantics, for backends with a native async driver.

:class:`AsyncStandardSessionStore` is :class:`~lash.store.StandardSessionStore` with
``await``: both run the generators of :mod:`lash.store_rules` (one copy of the commit,
compare-and-swap, ledger, snapshot, tombstone, delete and GC rules), the sync store with
plain calls, this one with :func:`lash.store_rules.drive` over an
:class:`~lash.store.AsyncSessionStorage`. :class:`AsyncStorageBackend` does the same for
the backend-wide delete, listing and GC of :class:`~lash.store.StorageBackend`, and
shares the sync backend's composition (``[blobs]``, ``[encryption]``): a backend plugin
writes only async primitives (open, list and delete storage; the transaction; its blob
storage) and returns one of these from ``async_backend(executor)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from lash import store_rules
from lash.aio.blobs import AsyncBlobStorage, AsyncEnvelopeBlobCalls, ThreadedBlobCalls
from lash.blobs import BlobStore, EnvelopeBlobStore
from lash.errors import LashError, SessionClosedError
from lash.model import (
    Commit,
    CommitResult,
    FullGraph,
    GcReport,
    Head,
    Node,
    ReadScope,
    SessionInfo,
    SessionMeta,
    SessionRead,
    VacuumReport,
)
from lash.store import (
    ANY_REVISION,
    AsyncSessionStorage,
    AsyncStorageTransaction,
    ExpectedRevision,
    SessionSummary,
    StorageBackend,
    check_session_id,
)
from lash.store_rules import AnyBlobCalls, Rules, SessionRules

T = TypeVar("T")


class AsyncStandardSessionStore:
    """:class:`~lash.store.AsyncSessionStore` over :class:`~lash.store.AsyncSessionStorage` primitives."""

    def __init__(
        self,
        session_id: str,
        storage: AsyncSessionStorage,
        blobs: BlobStore,
        blob_calls: AnyBlobCalls,
        *,
        shared_gc: Callable[[], Any] | None = None,
    ) -> None:
        self.session_id = check_session_id(session_id)
        self.storage = storage
        self.blobs = blobs
        """The session's blob store (synchronous, for low-level use and tests); the rules use ``blob_calls``."""
        self.rules = SessionRules(self.session_id, storage, blob_calls, shared_gc)
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session_id!r}>"

    def _txn(self, write: bool) -> AbstractAsyncContextManager[AsyncStorageTransaction]:
        if self._closed:
            raise SessionClosedError(f"session store {self.session_id!r} is closed")
        return self.storage.transaction(write=write)

    async def _drive(self, rules: Rules[T]) -> T:
        return await store_rules.drive(rules, self._txn)

    async def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        return await self._drive(self.rules.load_session(scope))

    async def load_head(self) -> Head | None:
        stored = await self._drive(self.rules.load_stored_head())
        return None if stored is None else stored.head

    async def load_summary(self) -> tuple[Head, SessionSummary] | None:
        stored = await self._drive(self.rules.load_stored_head())
        return None if stored is None else (stored.head, stored.summary)

    async def load_node(self, node_id: str) -> Node | None:
        return await self._drive(self.rules.load_node(node_id))

    async def load_meta(self) -> SessionMeta | None:
        return await self._drive(self.rules.load_meta())

    async def save_meta(self, meta: SessionMeta) -> None:
        await self._drive(self.rules.save_meta(meta))

    async def commit(self, commit: Commit) -> CommitResult:
        return await self._drive(self.rules.commit(commit))

    async def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        return await self._drive(self.rules.tombstone_nodes(node_ids))

    async def vacuum(self) -> VacuumReport:
        return await self._drive(self.rules.vacuum())

    async def mark_deleted(self, expected_head_revision: ExpectedRevision = ANY_REVISION) -> None:
        await self._drive(self.rules.mark_deleted(expected_head_revision))

    async def gc_unreachable(self) -> GcReport:
        return await self._drive(self.rules.gc_unreachable())

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.storage.close()


class AsyncStorageBackend(ABC):
    """:class:`~lash.store.AsyncBackend` from async primitives, beside the :class:`StorageBackend` it serves.

    Subclasses implement ``_open_storage``, ``_session_ids`` and ``_delete_storage`` (async),
    and ``_own_blob_storage`` when the backend's own blob store has an async face. Blobs
    kept elsewhere (``[blobs]``) are called in ``executor``. The backend must share one
    blob store across its sessions (``blobs_per_session`` False).
    """

    def __init__(self, backend: StorageBackend, executor: Executor) -> None:
        if backend.blobs_per_session:
            raise LashError(f"{type(self).__name__}: a backend with per-session blob stores has no async face here")
        self.backend = backend
        self.executor = executor
        self.gc_grace_seconds = backend.gc_grace_seconds

    @abstractmethod
    async def _open_storage(self, session_id: str, *, create: bool) -> AsyncSessionStorage | None:
        """The storage of ``session_id``; None if absent and not ``create``."""

    @abstractmethod
    async def _session_ids(self) -> list[str]:
        """Ids of every stored session."""

    @abstractmethod
    async def _delete_storage(self, session_id: str) -> bool:
        """Remove the session's storage; True if it existed."""

    def _own_blob_storage(self) -> AsyncBlobStorage | None:
        """The async face of the backend's own shared blob storage (None: call it in the executor)."""
        return None

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release what the async side holds (its connection pool)."""

    @property
    def blobs(self) -> BlobStore | None:
        return self.backend.blobs

    def _blob_calls(self, blobs: BlobStore) -> AnyBlobCalls:
        """``blobs``' face for the rules: native when it is the backend's own storage, else in the executor."""
        own = None if self.backend._external_blobs is not None else self._own_blob_storage()
        if own is not None and isinstance(blobs, EnvelopeBlobStore):
            return AsyncEnvelopeBlobCalls(blobs, own)
        return ThreadedBlobCalls(blobs, self.executor)

    def _shares_blobs(self) -> bool:
        return True

    def _shared_blob_calls(self) -> AnyBlobCalls:
        blobs = self.blobs
        assert blobs is not None
        return self._blob_calls(blobs)

    async def _drive(self, rules: Rules[T]) -> T:
        return await store_rules.drive(rules, store_rules.no_transaction)

    async def open_session(self, session_id: str, *, create: bool = True) -> AsyncStandardSessionStore | None:
        session_id = check_session_id(session_id)
        storage = await self._open_storage(session_id, create=create)
        if storage is None:
            return None
        blobs = self.blobs
        assert blobs is not None  # already encrypted when [encryption] is set
        encryption = self.backend.encryption
        if encryption is not None:
            storage = encryption.async_session_storage(session_id, storage)
        return AsyncStandardSessionStore(session_id, storage, blobs, self._blob_calls(blobs), shared_gc=self.gc)

    async def _open_store(self, session_id: str, create: bool) -> AsyncStandardSessionStore | None:
        return await self.open_session(session_id, create=create)

    async def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        return await self._drive(store_rules.delete_session(self, session_id, expected_head_revision))

    async def list_sessions(self) -> list[SessionInfo]:
        return await self._drive(store_rules.list_sessions(self))

    async def _live_heads(self) -> list[Head]:
        return await self._drive(store_rules.live_heads(self))

    async def gc(self) -> GcReport:
        return await self._drive(store_rules.gc(self))

    async def close(self) -> None:
        await self._close()
