"""lash-memory: an in-process backend and blob store.

Nothing survives the process; use it for tests, ephemeral agents and as the reference
implementation of the storage primitives. Sessions share one content-addressed blob store.
Registered as backend ``memory`` and blob store ``memory`` through the ``lash`` entry point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

import lash
from lash.blobs import BlobProfile, EnvelopeBlobStore, StoredBlob
from lash.model import BlobRef
from lash.plugins import from_options
from lash.store import LedgerKey, SessionStorage, StorageBackend, StoredNode

__all__ = ["MemoryBackend", "MemoryBlobStorage"]


@attrs.define
class _Row:
    parent_id: str | None
    data: bytes
    tombstoned: bool = False


@attrs.define
class _SessionData:
    head: bytes | None = None
    nodes: dict[str, _Row] = attrs.field(factory=dict)
    ledger: dict[LedgerKey, bytes] = attrs.field(factory=dict)
    meta: bytes | None = None


class _Transaction:
    """Reads the committed data; stages writes and applies them only if the block succeeds."""

    def __init__(self, data: _SessionData) -> None:
        self._data = data
        self._staged: list[Callable[[_SessionData], Any]] = []

    def apply(self) -> None:
        for op in self._staged:
            op(self._data)

    def read_head(self) -> bytes | None:
        return self._data.head

    def write_head(self, revision: int, data: bytes) -> None:
        self._staged.append(lambda d: setattr(d, "head", data))

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        rows = self._data.nodes
        return {
            nid: rows[nid].data for nid in node_ids if nid in rows and (include_tombstoned or not rows[nid].tombstoned)
        }

    def read_all_nodes(self) -> list[bytes]:
        return [row.data for row in self._data.nodes.values() if not row.tombstoned]

    def read_path(self, leaf_id: str) -> list[bytes]:
        path = []
        current: str | None = leaf_id
        while current is not None:
            row = self._data.nodes.get(current)
            if row is None or row.tombstoned:
                break
            path.append(row.data)
            current = row.parent_id
        return path

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        rows = [(n.node_id, _Row(n.parent_id, n.data)) for n in nodes]
        self._staged.append(lambda d: d.nodes.update(rows))

    def clear_nodes(self) -> None:
        self._staged.append(lambda d: d.nodes.clear())

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        ledger = self._data.ledger
        return dict(ledger) if keys is None else {k: ledger[k] for k in keys if k in ledger}

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        rows = dict(rows)
        self._staged.append(lambda d: d.ledger.update(rows))

    def read_meta(self) -> bytes | None:
        return self._data.meta

    def write_meta(self, data: bytes) -> None:
        self._staged.append(lambda d: setattr(d, "meta", data))

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        hidden = [nid for nid in node_ids if nid in self._data.nodes and not self._data.nodes[nid].tombstoned]

        def hide(d: _SessionData) -> None:
            for nid in hidden:
                d.nodes[nid].tombstoned = True

        self._staged.append(hide)
        return len(hidden)

    def vacuum(self) -> int:
        doomed = [nid for nid, row in self._data.nodes.items() if row.tombstoned]

        def remove(d: _SessionData) -> None:
            for nid in doomed:
                del d.nodes[nid]

        self._staged.append(remove)
        return len(doomed)


class _MemorySessionStorage:
    def __init__(self, data: _SessionData, lock: threading.RLock) -> None:
        self._data = data
        self._lock = lock

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[_Transaction]:
        with self._lock:
            txn = _Transaction(self._data)
            yield txn
            if write:
                txn.apply()

    def close(self) -> None:
        pass


class MemoryBlobStorage:
    """Raw blob envelopes in a dict."""

    def __init__(self) -> None:
        self._blobs: dict[BlobRef, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def read(self, ref: BlobRef) -> bytes | None:
        entry = self._blobs.get(ref)
        return None if entry is None else entry[0]

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        with self._lock:
            entry = self._blobs.get(ref)
            self._blobs[ref] = (entry[0] if entry else envelope, time.time())
            return entry is None

    def exists(self, ref: BlobRef) -> bool:
        return ref in self._blobs

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        with self._lock:
            doomed = [r for r in refs if r in self._blobs and (older_than is None or self._blobs[r][1] <= older_than)]
            for ref in doomed:
                del self._blobs[ref]
            return len(doomed)

    def list(self) -> Iterator[StoredBlob]:
        return iter([StoredBlob(ref, at) for ref, (_, at) in list(self._blobs.items())])

    def tamper(self, ref: BlobRef, envelope: bytes) -> None:
        """Overwrite a stored envelope behind the store's back (for integrity tests)."""
        self._blobs[ref] = (envelope, self._blobs[ref][1])


class MemoryBackend(StorageBackend):
    """Sessions in process memory, blobs in one shared content-addressed store.

    Options: ``blob_profile`` (``balanced``), ``gc_grace_seconds`` (0: every commit holds the
    backend lock while it writes blobs, so a collection can never race one).
    """

    def __init__(self, *, blob_profile: str = BlobProfile.BALANCED, gc_grace_seconds: float = 0.0) -> None:
        super().__init__(gc_grace_seconds=gc_grace_seconds)
        self._lock = threading.RLock()
        self._sessions: dict[str, _SessionData] = {}
        self.blob_storage = MemoryBlobStorage()
        self._blob_store = EnvelopeBlobStore(self.blob_storage, blob_profile)

    def _open_storage(self, session_id: str, *, create: bool) -> SessionStorage | None:
        with self._lock:
            data = self._sessions.get(session_id)
            if data is None:
                if not create:
                    return None
                data = self._sessions[session_id] = _SessionData()
        return _MemorySessionStorage(data, self._lock)

    def _session_blobs(self, storage: SessionStorage) -> EnvelopeBlobStore:
        return self._blob_store

    def _own_shared_blobs(self) -> EnvelopeBlobStore:
        return self._blob_store

    def _session_ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def _delete_storage(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def gc(self) -> lash.GcReport:
        with self._lock:  # no commit can be writing blobs meanwhile
            return super().gc()


def memory_blob_store(*, blob_profile: str = BlobProfile.BALANCED) -> EnvelopeBlobStore:
    """A standalone in-memory blob store (``[blobs] backend = "memory"``)."""
    return EnvelopeBlobStore(MemoryBlobStorage(), blob_profile)


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("memory", from_options(MemoryBackend))


@lash.hookimpl
def lash_register_blob_stores(register: Callable[..., None]) -> None:
    register("memory", from_options(memory_blob_store))
