"""One session as S3 objects: lash's storage primitives over a compare-and-swap on one object.

Under ``<prefix>/sessions/<sha256(id)[:32]>/`` a session keeps:

* ``state`` — the only object a commit *replaces*: the core's head record, the token
  ledger, the tombstoned node ids and the names of the node segments that make up the
  graph. It is written with a conditional put (``IfMatch`` the ETag read at the start of
  the transaction, ``IfNoneMatch="*"`` to create it), which is the linearisation point.
* ``nodes/<revision>-<random>`` — immutable segments, one per commit that adds nodes,
  each holding just that commit's new nodes (``ReplaceFull`` and ``vacuum`` write a new
  base segment). A segment counts only once ``state`` lists it, so the segment of a commit
  that lost the race is invisible (and deleted at once, or by a later ``vacuum``).
* ``meta`` — descriptive metadata, replaced by a plain put.

A transaction reads ``state`` once, answers node reads from the listed segments (fetched
concurrently, then cached: segments never change), stages every write and applies them
on exit: segments first, then the conditional put of ``state``. Blobs go to the shared
content-addressed keys before that, so the head never names a blob that is not uploaded.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs

from lash import codec
from lash.errors import BackendError, HeadRevisionConflict
from lash.store import LedgerKey, StoredNode
from lash_s3.objects import S3Objects, StoredObject


@attrs.frozen
class LedgerRow:
    source: str
    model: str
    data: bytes


@attrs.frozen
class SessionState:
    """The ``state`` object: everything a commit changes except the node bytes."""

    session_id: str
    revision: int | None = None
    head: bytes | None = None
    segments: tuple[str, ...] = ()
    """Names of the segments holding the graph, oldest first."""
    tombstones: frozenset[str] = frozenset()
    ledger: tuple[LedgerRow, ...] = ()


@attrs.frozen
class Segment:
    """The nodes one commit added, in order."""

    nodes: tuple[StoredNode, ...]


class SessionLayout:
    """The keys of one session's objects."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.state = f"{root}state"
        self.meta = f"{root}meta"
        self.nodes = f"{root}nodes/"

    def segment(self, name: str) -> str:
        return f"{self.nodes}{name}"


def decode_state(stored: StoredObject, key: str) -> SessionState:
    return codec.decode(stored.body, SessionState, f"S3 session state {key}")


class S3SessionStorage:
    """:class:`lash.store.SessionStorage` of one session in a bucket.

    ``segment_grace_seconds``: ``vacuum`` deletes segments no longer listed by ``state``
    once they are older than this, so a reader that fetched ``state`` just before cannot
    find its segments gone (and an in-flight commit's segment is never taken).
    """

    def __init__(self, objects: S3Objects, layout: SessionLayout, *, segment_grace_seconds: float) -> None:
        self.objects = objects
        self.layout = layout
        self.segment_grace_seconds = segment_grace_seconds
        self._write_lock = threading.Lock()  # writers of this process queue instead of conflicting
        self._cache_lock = threading.Lock()
        self._segments: dict[str, tuple[StoredNode, ...]] = {}
        self._view: tuple[tuple[str, ...], dict[str, StoredNode]] = ((), {})

    def __repr__(self) -> str:
        return f"<S3SessionStorage s3://{self.objects.bucket}/{self.layout.root}>"

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[S3Transaction]:
        if not write:
            yield S3Transaction(self)
            return
        with self._write_lock:
            txn = S3Transaction(self)
            yield txn
            txn.apply()

    def close(self) -> None:
        with self._cache_lock:
            self._segments.clear()
            self._view = ((), {})

    # -- nodes --------------------------------------------------------------------------

    def nodes(self, segments: tuple[str, ...]) -> dict[str, StoredNode]:
        """Every node of ``segments`` by id, in insertion order (do not mutate: it is cached)."""
        while True:
            with self._cache_lock:
                key, view = self._view
                if key == segments:
                    return view
                missing = [name for name in segments if name not in self._segments]
            fetched = self._fetch(missing)
            with self._cache_lock:
                self._segments.update(fetched)
                if any(name not in self._segments for name in segments):
                    continue  # a thread reading a newer state dropped one meanwhile
                key, view = self._view
                if key and segments[: len(key)] == key:
                    view, tail = dict(view), segments[len(key) :]
                else:
                    view, tail = {}, segments
                for name in tail:
                    view.update((n.node_id, n) for n in self._segments[name])
                for stale in self._segments.keys() - set(segments):
                    del self._segments[stale]
                self._view = (segments, view)
                return view

    def _fetch(self, names: Sequence[str]) -> dict[str, tuple[StoredNode, ...]]:
        return dict(zip(names, self.objects.map(self._fetch_one, names), strict=True))

    def _fetch_one(self, name: str) -> tuple[StoredNode, ...]:
        key = self.layout.segment(name)
        stored = self.objects.get(key)
        if stored is None:
            raise BackendError(
                f"S3 node segment s3://{self.objects.bucket}/{key} listed by the session state is missing "
                "(deleted behind lash's back, or by a vacuum older than its grace period)"
            )
        return codec.decode(stored.body, Segment, f"S3 node segment {key}").nodes

    def remember(self, name: str, nodes: tuple[StoredNode, ...]) -> None:
        """Cache a segment this process just wrote (saves fetching it back)."""
        with self._cache_lock:
            self._segments[name] = nodes

    def write_segment(self, revision: int, nodes: tuple[StoredNode, ...]) -> str:
        """Upload a segment under a fresh name; returns the name."""
        name = f"{revision:012d}-{uuid.uuid4().hex[:12]}"
        self.objects.put(self.layout.segment(name), codec.encode(Segment(nodes)))
        return name

    def unlisted_segments(self, listed: Collection[str], older_than: float) -> list[str]:
        """Keys of segments ``state`` no longer lists, older than ``older_than``."""
        keep = {self.layout.segment(name) for name in listed}
        return [
            obj.key
            for obj in self.objects.list(self.layout.nodes)
            if obj.key not in keep and obj.last_modified <= older_than
        ]


class S3Transaction:
    """:class:`lash.store.StorageTransaction` over one read of ``state``; writes land in :meth:`apply`."""

    def __init__(self, storage: S3SessionStorage) -> None:
        self._storage = storage
        self._read: tuple[SessionState, str] | None = None
        self._head: bytes | None = None
        self._revision: int | None = None
        self._new_nodes: list[StoredNode] = []
        self._cleared = False
        self._ledger: dict[LedgerKey, bytes] = {}
        self._tombstoned: set[str] = set()
        self._vacuumed = False
        self._folded = False  # vacuum rewrites the log as one base segment
        self._meta: bytes | None = None

    # -- state --------------------------------------------------------------------------

    def _state(self) -> SessionState:
        if self._read is None:
            key = self._storage.layout.state
            stored = self._storage.objects.get(key)
            if stored is None:
                raise BackendError(
                    f"S3 session state s3://{self._storage.objects.bucket}/{key} is gone: the session was deleted"
                )
            self._read = (decode_state(stored, key), stored.etag)
        return self._read[0]

    def _nodes(self) -> dict[str, StoredNode]:
        return {} if self._cleared else self._storage.nodes(self._state().segments)

    def _hidden(self) -> frozenset[str]:
        return self._state().tombstones | self._tombstoned

    # -- reads --------------------------------------------------------------------------

    def read_head(self) -> bytes | None:
        return self._state().head

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        nodes, hidden = self._nodes(), self._hidden()
        return {nid: nodes[nid].data for nid in node_ids if nid in nodes and (include_tombstoned or nid not in hidden)}

    def read_all_nodes(self) -> list[bytes]:
        hidden = self._hidden()
        return [n.data for nid, n in self._nodes().items() if nid not in hidden]

    def read_path(self, leaf_id: str) -> list[bytes]:
        nodes, hidden = self._nodes(), self._hidden()
        path: list[bytes] = []
        current: str | None = leaf_id
        while current is not None and current in nodes and current not in hidden and len(path) <= len(nodes):
            path.append(nodes[current].data)
            current = nodes[current].parent_id
        return path

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        rows = {(r.source, r.model): r.data for r in self._state().ledger}
        return rows if keys is None else {k: rows[k] for k in keys if k in rows}

    def read_meta(self) -> bytes | None:
        stored = self._storage.objects.get(self._storage.layout.meta)
        return None if stored is None else stored.body

    # -- staged writes ------------------------------------------------------------------

    def write_head(self, revision: int, data: bytes) -> None:
        self._revision, self._head = revision, data

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        self._new_nodes.extend(nodes)

    def clear_nodes(self) -> None:
        self._cleared, self._new_nodes = True, []

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        self._ledger.update(rows)

    def write_meta(self, data: bytes) -> None:
        self._meta = data

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        nodes, hidden = self._nodes(), self._hidden()
        fresh = {nid for nid in node_ids if nid in nodes and nid not in hidden}
        self._tombstoned |= fresh
        return len(fresh)

    def vacuum(self) -> int:
        nodes, hidden = self._nodes(), self._hidden()
        self._vacuumed = True
        self._folded = len(self._state().segments) > 1 or any(nid in nodes for nid in hidden)
        return sum(nid in nodes for nid in hidden)

    # -- apply --------------------------------------------------------------------------

    def apply(self) -> None:
        """Write what was staged: meta; segments, then ``state`` by compare-and-swap; after a vacuum, sweep."""
        storage = self._storage
        if self._meta is not None:
            storage.objects.put(storage.layout.meta, self._meta)
        segments = self._swap_state() if self._changes_state() else self._state().segments
        if self._vacuumed:  # segments the state no longer lists: superseded, or of commits that lost
            doomed = storage.unlisted_segments(segments, time.time() - storage.segment_grace_seconds)
            if doomed:
                storage.objects.delete(doomed)

    def _swap_state(self) -> tuple[str, ...]:
        """Upload the new segment, then replace ``state`` if nobody else did; the segments it lists."""
        storage = self._storage
        state, etag = self._state(), self._etag()
        segments, tombstones = list(state.segments), set(state.tombstones) | self._tombstoned
        rows = list(self._new_nodes)
        if self._cleared or self._folded:
            kept = [] if self._cleared else [n for nid, n in self._nodes().items() if nid not in tombstones]
            segments, tombstones, rows = [], set(), kept + rows
        revision = self._revision if self._head is not None else state.revision
        written = storage.write_segment(revision or 0, tuple(rows)) if rows else None
        if written is not None:
            segments.append(written)
        ledger = {(r.source, r.model): r.data for r in state.ledger} | self._ledger
        new_state = attrs.evolve(
            state,
            revision=revision,
            head=self._head if self._head is not None else state.head,
            segments=tuple(segments),
            tombstones=frozenset(tombstones),
            ledger=tuple(LedgerRow(s, m, d) for (s, m), d in ledger.items()),
        )
        if storage.objects.put_if(storage.layout.state, codec.encode(new_state), etag=etag) is None:
            if written is not None:  # never listed: nobody can have read it
                storage.objects.delete([storage.layout.segment(written)])
            raise HeadRevisionConflict(state.revision, self._current_revision())
        if written is not None:
            storage.remember(written, tuple(rows))
        return new_state.segments

    def _changes_state(self) -> bool:
        staged = (self._new_nodes, self._cleared, self._ledger, self._tombstoned, self._folded)
        return self._head is not None or any(staged)

    def _etag(self) -> str:
        assert self._read is not None
        return self._read[1]

    def _current_revision(self) -> int | None:
        stored = self._storage.objects.get(self._storage.layout.state)
        return None if stored is None else decode_state(stored, self._storage.layout.state).revision
