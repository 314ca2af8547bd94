"""The storage contract, and the faces of the commit semantics every backend shares.

Three layers, from the outside in:

* :class:`Backend` and :class:`SessionStore` are what users and the runtime program
  against (lash's ``SessionStoreFactory`` and ``RuntimePersistence``); :class:`AsyncBackend`
  and :class:`AsyncSessionStore` are their awaitable counterparts (``lash.aio``).
* :class:`StandardSessionStore` implements :class:`SessionStore` once, for every backend:
  revision compare-and-swap, ``Append``/``Unchanged``/``ReplaceFull``, snapshot reuse by
  generation/revision, ledger merge, tombstones, vacuum and blob GC. The rules themselves
  live in :mod:`lash.store_rules` as generators over primitives, so that
  :class:`lash.aio.store.AsyncStandardSessionStore` applies the very same ones with ``await``.
* :class:`SessionStorage` / :class:`StorageTransaction` are the primitives a backend
  provides: opaque bytes in and out inside a transaction. A new backend writes only these
  (see :class:`StorageBackend`), and runs :mod:`lash.testing` to prove it. A backend with
  an async driver may also provide :class:`AsyncSessionStorage` /
  :class:`AsyncStorageTransaction` (see :class:`lash.aio.store.AsyncStorageBackend`).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from lash import store_rules
from lash.blobs import BlobStore, EnvelopeBlobStore
from lash.errors import SessionClosedError
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
from lash.store_rules import (
    ANY_REVISION,
    MAX_SESSION_ID_LENGTH,
    BlobCalls,
    ExpectedRevision,
    LedgerKey,
    Rules,
    SessionRules,
    SessionSummary,
    StoredHead,
    StoredNode,
    check_session_id,
    head_roots,
    session_info,
    stored_blobs,
    user_text,
)

if TYPE_CHECKING:
    from lash.encryption import Encryption  # imports cryptography: only when [encryption] is set

T = TypeVar("T")

__all__ = [
    "ANY_REVISION",
    "MAX_SESSION_ID_LENGTH",
    "AsyncBackend",
    "AsyncScrubbingStorage",
    "AsyncSessionStorage",
    "AsyncSessionStore",
    "AsyncStorageTransaction",
    "Backend",
    "ExpectedRevision",
    "Head",
    "LedgerKey",
    "ScrubbingStorage",
    "SessionStorage",
    "SessionStore",
    "SessionSummary",
    "StandardSessionStore",
    "StorageBackend",
    "StorageTransaction",
    "StoredHead",
    "StoredNode",
    "check_session_id",
    "collect_shared_blobs",
    "head_roots",
    "session_info",
    "stored_blobs",
    "user_text",
]


# --- the public contract --------------------------------------------------------------------


@runtime_checkable
class SessionStore(Protocol):
    """Persistence of one session, bound to its id."""

    session_id: str
    blobs: BlobStore

    def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        """The committed session (None if never committed), reading ``scope`` of its graph."""
        ...

    def load_head(self) -> Head | None:
        """The head (revision, leaf, manifest) without nodes or blobs, or None before the first commit.

        Cheap: ``Session.refresh()`` asks it first and reads the session only when the head moved.
        """
        ...

    def load_node(self, node_id: str) -> Node | None:
        """One visible node, or None."""
        ...

    def commit(self, commit: Commit) -> CommitResult:
        """Apply ``commit`` atomically or raise (:class:`HeadRevisionConflict` and others)."""
        ...

    def save_meta(self, meta: SessionMeta) -> None:
        """Store descriptive metadata."""
        ...

    def load_meta(self) -> SessionMeta | None:
        """The stored metadata, or None."""
        ...

    def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        """Hide nodes from reads; returns how many were hidden."""
        ...

    def vacuum(self) -> VacuumReport:
        """Delete tombstoned nodes for good."""
        ...

    def gc_unreachable(self) -> GcReport:
        """Delete blobs no head references."""
        ...

    def close(self) -> None:
        """Release resources; further calls raise :class:`SessionClosedError`."""
        ...


@runtime_checkable
class Backend(Protocol):
    """What a backend plugin registers: a factory of session stores."""

    @property
    def blobs(self) -> BlobStore | None:
        """The blob store shared by all sessions, or None when each session keeps its own."""
        ...

    def open_session(self, session_id: str, *, create: bool = True) -> SessionStore | None:
        """The store of ``session_id``; None when it does not exist and ``create`` is False."""
        ...

    def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ...) -> bool:
        """Remove everything the session owns; True if it existed.

        With ``expected_head_revision`` (an int, or None for "never committed") the delete
        is a compare-and-delete: when the head moved meanwhile, :class:`HeadRevisionConflict`
        and nothing is deleted.
        """
        ...

    def list_sessions(self) -> list[SessionInfo]:
        """Every session, for pickers."""
        ...

    def gc(self) -> GcReport:
        """Collect unreachable blobs of every session."""
        ...

    def close(self) -> None:
        """Release every resource."""
        ...


# --- the async face of the contract (lash.aio) -------------------------------------------


@runtime_checkable
class AsyncSessionStore(Protocol):
    """:class:`SessionStore` with awaitable methods: what ``lash.aio`` sessions call.

    ``lash.aio`` never runs two calls of one store at a time (besides ``close``), and lets
    every call it starts finish even when the awaiting task is cancelled, so a native
    implementation needs no cancellation handling of its own to keep a head old-or-new.
    """

    session_id: str
    blobs: BlobStore
    """The session's blob store (synchronous, for low-level use and tests)."""

    async def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None: ...

    async def load_head(self) -> Head | None: ...

    async def load_node(self, node_id: str) -> Node | None: ...

    async def commit(self, commit: Commit) -> CommitResult: ...

    async def save_meta(self, meta: SessionMeta) -> None: ...

    async def load_meta(self) -> SessionMeta | None: ...

    async def tombstone_nodes(self, node_ids: Iterable[str]) -> int: ...

    async def vacuum(self) -> VacuumReport: ...

    async def gc_unreachable(self) -> GcReport: ...

    async def close(self) -> None: ...


@runtime_checkable
class AsyncBackend(Protocol):
    """:class:`Backend` with awaitable methods, which a backend may implement natively.

    Discovery: a :class:`Backend` that has a method ``async_backend(executor)`` returning one
    of these gets it used by ``lash.aio`` (called once per handle, on the event-loop thread,
    so it may create loop-bound resources such as psycopg's ``AsyncConnectionPool``;
    ``executor`` is the handle's worker pool, for blocking work that has no async face, such
    as an external ``[blobs]`` store).
    Backends without it are run by ``lash.aio`` in its bounded worker pool. ``close()``
    releases only what the async side holds: ``lash.aio`` closes the :class:`Backend`
    itself afterwards.
    """

    @property
    def blobs(self) -> BlobStore | None: ...

    async def open_session(self, session_id: str, *, create: bool = True) -> AsyncSessionStore | None: ...

    async def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ...) -> bool: ...

    async def list_sessions(self) -> list[SessionInfo]: ...

    async def gc(self) -> GcReport: ...

    async def close(self) -> None: ...


# --- primitives a backend implements ----------------------------------------------------


class StorageTransaction(Protocol):
    """Primitive reads and writes of one session inside one transaction.

    Everything done through one transaction becomes visible together at its end or not at
    all. The core reads before it writes within a transaction, so a backend may stage
    writes and apply them at the end.
    """

    def read_head(self) -> bytes | None:
        """The stored head record, or None before the first commit."""
        ...

    def write_head(self, revision: int, data: bytes) -> None:
        """Replace the head (the core has already checked the expected revision)."""
        ...

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        """The stored records of those of ``node_ids`` that exist."""
        ...

    def read_all_nodes(self) -> list[bytes]:
        """Every visible node record, in insertion order."""
        ...

    def read_path(self, leaf_id: str) -> list[bytes]:
        """Visible node records from ``leaf_id`` up towards the root (leaf first).

        Stops at a missing or tombstoned ancestor. Backends walk this in the database
        (a recursive CTE), not over every node.
        """
        ...

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        """Add new nodes (ids are known not to exist), keeping their order."""
        ...

    def clear_nodes(self) -> None:
        """Remove every node, tombstoned or not."""
        ...

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        """Ledger rows for ``keys`` (all rows when None), in insertion order."""
        ...

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        """Insert or replace ledger rows."""
        ...

    def read_meta(self) -> bytes | None:
        """The stored meta record, or None."""
        ...

    def write_meta(self, data: bytes) -> None:
        """Replace the meta record."""
        ...

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        """Hide visible nodes; returns how many were hidden."""
        ...

    def vacuum(self) -> int:
        """Delete tombstoned nodes; returns how many rows were removed."""
        ...


class SessionStorage(Protocol):
    """A backend's storage of one session.

    A storage that keeps deleted bytes around (free pages, a write-ahead log) may also
    implement :class:`ScrubbingStorage`.
    """

    def transaction(self, *, write: bool) -> AbstractContextManager[StorageTransaction]:
        """A transaction; ``write=True`` takes the session's write lock for its duration."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class ScrubbingStorage(Protocol):
    """Optional: a :class:`SessionStorage` that can overwrite the space deletes freed."""

    def scrub(self) -> None:
        """Make deleted rows unrecoverable from the storage's files (called after vacuum and GC)."""
        ...


class AsyncStorageTransaction(Protocol):
    """:class:`StorageTransaction` with awaitable methods, for backends with an async driver.

    Same methods, arguments and results; the core calls them one at a time.
    """

    async def read_head(self) -> bytes | None: ...

    async def write_head(self, revision: int, data: bytes) -> None: ...

    async def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]: ...

    async def read_all_nodes(self) -> list[bytes]: ...

    async def read_path(self, leaf_id: str) -> list[bytes]: ...

    async def insert_nodes(self, nodes: Sequence[StoredNode]) -> None: ...

    async def clear_nodes(self) -> None: ...

    async def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]: ...

    async def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None: ...

    async def read_meta(self) -> bytes | None: ...

    async def write_meta(self, data: bytes) -> None: ...

    async def tombstone_nodes(self, node_ids: Collection[str]) -> int: ...

    async def vacuum(self) -> int: ...


class AsyncSessionStorage(Protocol):
    """:class:`SessionStorage` whose transaction is an async context manager.

    Leaving the ``async with`` block normally commits; leaving it by an exception (or a
    cancellation) rolls back, so a transaction cut off half-way writes nothing. An
    :class:`AsyncScrubbingStorage` may also scrub.
    """

    def transaction(self, *, write: bool) -> AbstractAsyncContextManager[AsyncStorageTransaction]: ...

    async def close(self) -> None: ...


@runtime_checkable
class AsyncScrubbingStorage(Protocol):
    """Optional: an :class:`AsyncSessionStorage` that can overwrite the space deletes freed."""

    async def scrub(self) -> None: ...


# --- the synchronous face of the shared semantics ----------------------------------------


class StandardSessionStore:
    """:class:`SessionStore` over :class:`SessionStorage` primitives, for every backend.

    Each method runs the generator of :class:`lash.store_rules.SessionRules` with plain
    calls (:func:`lash.store_rules.run`) inside ``storage.transaction()``.
    """

    def __init__(
        self,
        session_id: str,
        storage: SessionStorage,
        blobs: EnvelopeBlobStore | BlobStore,
        *,
        shared_gc: Callable[[], GcReport] | None = None,
    ) -> None:
        self.session_id = check_session_id(session_id)
        self.storage = storage
        self.blobs = blobs
        self.rules = SessionRules(self.session_id, storage, BlobCalls(blobs), shared_gc)
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session_id!r}>"

    def _txn(self, write: bool) -> AbstractContextManager[StorageTransaction]:
        if self._closed:
            raise SessionClosedError(f"session store {self.session_id!r} is closed")
        return self.storage.transaction(write=write)

    def _run(self, rules: Rules[T]) -> T:
        return store_rules.run(rules, self._txn)

    def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        return self._run(self.rules.load_session(scope))

    def load_head(self) -> Head | None:
        """The head record without nodes or blobs (cheap)."""
        stored = self._run(self.rules.load_stored_head())
        return None if stored is None else stored.head

    def load_summary(self) -> tuple[Head, SessionSummary] | None:
        """The head and its summary counts, or None before the first commit."""
        stored = self._run(self.rules.load_stored_head())
        return None if stored is None else (stored.head, stored.summary)

    def load_node(self, node_id: str) -> Node | None:
        return self._run(self.rules.load_node(node_id))

    def load_meta(self) -> SessionMeta | None:
        return self._run(self.rules.load_meta())

    def save_meta(self, meta: SessionMeta) -> None:
        self._run(self.rules.save_meta(meta))

    def commit(self, commit: Commit) -> CommitResult:
        return self._run(self.rules.commit(commit))

    def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        return self._run(self.rules.tombstone_nodes(node_ids))

    def vacuum(self) -> VacuumReport:
        return self._run(self.rules.vacuum())

    def mark_deleted(self, expected_head_revision: ExpectedRevision = ANY_REVISION) -> None:
        """Step one of a delete (see :meth:`lash.store_rules.SessionRules.mark_deleted`)."""
        self._run(self.rules.mark_deleted(expected_head_revision))

    def gc_unreachable(self) -> GcReport:
        return self._run(self.rules.gc_unreachable())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.storage.close()


# --- a base class for backends built from primitives ------------------------------------


class StorageBackend(ABC):
    """A :class:`Backend` from per-session :class:`SessionStorage` primitives.

    Subclasses implement ``_open_storage``, ``_session_blobs``, ``_session_ids``,
    ``_delete_storage`` and ``_close``; sessions, listing, composition with an external
    blob store (``[blobs]`` in config) and GC are shared here (their rules, in
    :mod:`lash.store_rules`, with :class:`lash.aio.store.AsyncStorageBackend`).
    """

    blobs_per_session: bool = False
    """True when each session keeps its blobs in its own storage (lash-sqlite)."""

    encryption: Encryption | None = None
    """Set by :meth:`attach_encryption` (``[encryption]`` in config): seals every record and blob."""

    def __init__(self, *, gc_grace_seconds: float = 3600.0) -> None:
        self.gc_grace_seconds = float(gc_grace_seconds)
        self._external_blobs: BlobStore | None = None

    @abstractmethod
    def _open_storage(self, session_id: str, *, create: bool) -> SessionStorage | None:
        """The storage of ``session_id``; None if absent and not ``create``."""

    @abstractmethod
    def _session_blobs(self, storage: SessionStorage) -> EnvelopeBlobStore:
        """The backend's own blob store for a session opened through ``storage``."""

    @abstractmethod
    def _session_ids(self) -> list[str]:
        """Ids of every stored session."""

    @abstractmethod
    def _delete_storage(self, session_id: str) -> bool:
        """Remove the session's storage; True if it existed."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release backend-wide resources."""

    def _own_shared_blobs(self) -> BlobStore | None:
        """The backend's own shared blob store (None when blobs are per session)."""
        return None

    @property
    def blobs(self) -> BlobStore | None:
        blobs = self._external_blobs or self._own_shared_blobs()
        return blobs if blobs is None or self.encryption is None else self.encryption.blob_store(blobs)

    def attach_blob_store(self, store: BlobStore) -> None:
        """Keep every session's blobs in ``store`` (``[blobs]`` in config) instead."""
        self._external_blobs = store

    def attach_encryption(self, encryption: Encryption) -> None:
        """Encrypt every session's records and blobs from now on (see :mod:`lash.encryption`).

        Applied here, where storage and blobs are composed, so no backend needs code for it.
        """
        self.encryption = encryption

    def _shares_blobs(self) -> bool:
        return self._external_blobs is not None or not self.blobs_per_session

    def _shared_blob_calls(self) -> BlobCalls:
        blobs = self.blobs
        assert blobs is not None
        return BlobCalls(blobs)

    def _run(self, rules: Rules[T]) -> T:
        return store_rules.run(rules, store_rules.no_transaction)

    def open_session(self, session_id: str, *, create: bool = True) -> StandardSessionStore | None:
        session_id = check_session_id(session_id)
        storage = self._open_storage(session_id, create=create)
        if storage is None:
            return None
        blobs = self._external_blobs or self._session_blobs(storage)
        if self.encryption is not None:
            storage, blobs = self.encryption.session_storage(session_id, storage), self.encryption.blob_store(blobs)
        return StandardSessionStore(session_id, storage, blobs, shared_gc=self.gc if self._shares_blobs() else None)

    def _open_store(self, session_id: str, create: bool) -> StandardSessionStore | None:
        return self.open_session(session_id, create=create)

    def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        """Mark the session deleted (a compare-and-delete when given a revision), then remove its storage.

        The mark is written in the session's write transaction by the core, so every backend
        gets the check and no store that still has the session open can commit into it.
        """
        return self._run(store_rules.delete_session(self, session_id, expected_head_revision))

    def session_ids(self) -> list[str]:
        """Ids of every stored session."""
        return self._session_ids()

    def list_sessions(self) -> list[SessionInfo]:
        return self._run(store_rules.list_sessions(self))

    def _live_heads(self) -> list[Head]:
        """Every live head: the GC roots of a shared blob store (a backend may read them in one query)."""
        return self._run(store_rules.live_heads(self))

    def gc(self) -> GcReport:
        return self._run(store_rules.gc(self))

    def close(self) -> None:
        self._close()


def collect_shared_blobs(blobs: BlobStore, heads: Callable[[], Iterable[Head]], grace_seconds: float) -> GcReport:
    """Delete blobs of a store shared by many sessions that no head references.

    See :func:`lash.store_rules.collect_shared` for why a blob of a commit in flight survives.
    """
    rules = store_rules.collect_shared(BlobCalls(blobs), functools.partial(_listed, heads), grace_seconds)
    return store_rules.run(rules, store_rules.no_transaction)


def _listed(heads: Callable[[], Iterable[Head]]) -> list[Head]:
    return list(heads())
