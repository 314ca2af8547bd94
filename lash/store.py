"""The storage contract, and the commit semantics every backend shares.

Three layers, from the outside in:

* :class:`Backend` and :class:`SessionStore` are what users and the runtime program
  against (lash's ``SessionStoreFactory`` and ``RuntimePersistence``).
* :class:`StandardSessionStore` implements :class:`SessionStore` once, for every backend:
  revision compare-and-swap, ``Append``/``Unchanged``/``ReplaceFull``, snapshot reuse by
  generation/revision, ledger merge, tombstones, vacuum and blob GC.
* :class:`SessionStorage` / :class:`StorageTransaction` are the primitives a backend
  provides: opaque bytes in and out inside a transaction. A new backend writes only these
  (see :class:`StorageBackend`), and runs :mod:`lash.testing` to prove it.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final, Literal, Protocol, runtime_checkable

import attrs

from lash import codec
from lash.blobs import BlobStore, BlobWrite, EnvelopeBlobStore, StoredBlob, collectable, content_ref, put_all
from lash.errors import (
    BlobIntegrityError,
    CorruptRecordError,
    HeadRevisionConflict,
    InvalidGraphError,
    InvalidSessionId,
    LashError,
    SchemaVersionError,
    SessionBindingMismatch,
    SessionClosedError,
    SessionDeletedError,
    UnsupportedReadScope,
)
from lash.graph import SessionGraph
from lash.model import (
    ActivePath,
    Append,
    BlobHint,
    BlobKind,
    BlobRef,
    Checkpoint,
    Commit,
    CommitResult,
    FullGraph,
    GcReport,
    Head,
    HydratedCheckpoint,
    LedgerEntry,
    Node,
    NodeKind,
    PluginSnapshot,
    ReadScope,
    ReplaceFull,
    SessionConfig,
    SessionInfo,
    SessionMeta,
    SessionRead,
    TokenUsage,
    ToolState,
    Unchanged,
    VacuumReport,
    blob_ref_for,
)

if TYPE_CHECKING:
    from lash.encryption import Encryption  # imports cryptography: only when [encryption] is set

MAX_SESSION_ID_LENGTH = 1024

LedgerKey = tuple[str, str]


def check_session_id(session_id: object) -> str:
    """``session_id`` if lash can store it safely, else :class:`InvalidSessionId`.

    Any non-empty text without NUL of at most 1024 characters is accepted, including
    ``../x`` and unicode: backends store ids as data (hashed file names, bound SQL
    parameters, escaped keys), never as paths or SQL.
    """
    if not isinstance(session_id, str):
        raise InvalidSessionId(session_id, f"must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise InvalidSessionId(session_id, "must not be empty")
    if "\x00" in session_id:
        raise InvalidSessionId(session_id, "must not contain NUL")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InvalidSessionId(session_id, f"longer than {MAX_SESSION_ID_LENGTH} characters")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSessionId(session_id, "is not valid unicode text") from exc
    return session_id


# --- the public contract --------------------------------------------------------------------


@runtime_checkable
class SessionStore(Protocol):
    """Persistence of one session, bound to its id."""

    session_id: str
    blobs: BlobStore

    def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        """The committed session (None if never committed), reading ``scope`` of its graph."""
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

    Discovery: a :class:`Backend` that has a method ``async_backend()`` returning one of
    these gets it used by ``lash.aio`` (called once per handle, on the event-loop thread,
    so it may create loop-bound resources such as psycopg's ``AsyncConnectionPool``).
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


@attrs.frozen
class StoredNode:
    """A node as a backend stores it: id and parent as columns, the record as bytes."""

    node_id: str
    parent_id: str | None
    data: bytes


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


class _AnyRevision(enum.Enum):
    ANY = "any"


ANY_REVISION: Final = _AnyRevision.ANY
"""``delete_session``'s default: delete whatever revision the head is at."""

ExpectedRevision = int | None | Literal[_AnyRevision.ANY]


# --- the shared semantics --------------------------------------------------------------


@attrs.frozen
class SessionSummary:
    """Counts kept in the head so that listing sessions never reads their nodes."""

    node_count: int = 0
    user_message_count: int = 0
    first_user_message: str | None = None

    def add(self, nodes: Iterable[Node]) -> SessionSummary:
        count, users, first = self.node_count, self.user_message_count, self.first_user_message
        for node in nodes:
            count += 1
            text = user_text(node)
            if text is not None:
                users += 1
                first = text if first is None else first
        return SessionSummary(count, users, first)


def user_text(node: Node) -> str | None:
    """The text of a user message node, else None."""
    if node.kind != NodeKind.MESSAGE or not isinstance(node.body, dict) or node.body.get("role") != "user":
        return None
    content = node.body.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return str(content)


@attrs.frozen
class StoredHead:
    """The head record as stored: the public head plus the summary."""

    head: Head
    summary: SessionSummary = SessionSummary()
    deleted_at: float | None = None
    """Set by a delete: any store still holding the session refuses to write into it."""


class StandardSessionStore:
    """:class:`SessionStore` over :class:`SessionStorage` primitives, for every backend."""

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
        self._shared_gc = shared_gc
        self._closed = False
        self._last_head: tuple[bytes, StoredHead] | None = None
        """The head record last read or written, with its bytes: a commit re-reads the head it wrote."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session_id!r}>"

    # -- helpers --------------------------------------------------------------------------

    def _txn(self, *, write: bool) -> AbstractContextManager[StorageTransaction]:
        if self._closed:
            raise SessionClosedError(f"session store {self.session_id!r} is closed")
        return self.storage.transaction(write=write)

    def _read_head(self, txn: StorageTransaction, *, deleted_ok: bool = False) -> StoredHead | None:
        raw = txn.read_head()
        if raw is None:
            return None
        last = self._last_head
        if last is not None and last[0] == raw:  # the same bytes decode to the same record
            stored = last[1]
        else:
            stored = codec.decode(raw, StoredHead, f"head of session {self.session_id!r}")
            self._last_head = (raw, stored)
        if stored.deleted_at is not None and not deleted_ok:
            raise SessionDeletedError(self.session_id)
        return stored

    def _node(self, raw: bytes, node_id: str | None) -> Node:
        """Decode a node record; ``node_id`` is what the caller asked for (None: unknown)."""
        name = "a node" if node_id is None else f"node {node_id!r}"
        return codec.decode(raw, Node, f"{name} of session {self.session_id!r}")

    def _path_nodes(self, raws: Sequence[bytes], leaf_id: str) -> list[Node]:
        """Decode :meth:`StorageTransaction.read_path` records (leaf first), naming each by the id asked for."""
        try:  # the label naming a damaged node is only worth building when one is
            nodes = [codec.decode(raw, Node) for raw in raws]
        except LashError:  # decode again, naming the culprit
            nodes = []
            expected: str | None = leaf_id
            for raw in raws:
                nodes.append(self._node(raw, expected))
                expected = nodes[-1].parent_id
        return nodes

    def _all_nodes(self, raws: Iterable[bytes]) -> list[Node]:
        """Decode every node record; an undecodable one is named by the node stored before it."""
        nodes: list[Node] = []
        for raw in raws:
            try:
                nodes.append(codec.decode(raw, Node))
            except (CorruptRecordError, SchemaVersionError) as exc:
                where = f"after node {nodes[-1].node_id!r}" if nodes else "first"
                what = f"the node stored {where} in session {self.session_id!r}"
                if isinstance(exc, SchemaVersionError):
                    raise SchemaVersionError(exc.found, exc.supported, what) from exc
                raise CorruptRecordError(what, exc.reason) from exc
        return nodes

    def _blob(self, ref: BlobRef | None, cls: type, kind: str):
        if ref is None:
            return None
        what = f"{kind} blob of session {self.session_id!r}"
        try:
            data = self.blobs.get(ref)
        except BlobIntegrityError as exc:
            raise BlobIntegrityError(ref, f"{exc.reason} ({what})") from exc
        except SchemaVersionError as exc:
            raise SchemaVersionError(exc.found, exc.supported, f"{what} {ref}") from exc
        if data is None:
            raise BlobIntegrityError(ref, f"{kind} blob referenced by the head of {self.session_id!r} is missing")
        if cls is bytes:
            return data
        record = codec.decode(data, cls, f"{what} {ref}")
        if isinstance(record, ToolState) and not all(isinstance(t.get("name"), str) for t in record.tools):
            raise CorruptRecordError(f"{what} {ref}", "a tool has no str 'name'")
        return record

    # -- reads ----------------------------------------------------------------------------

    def load_session(self, scope: ReadScope = FullGraph()) -> SessionRead | None:
        if not isinstance(scope, FullGraph | ActivePath):
            raise UnsupportedReadScope(scope)
        with self._txn(write=False) as txn:
            stored = self._read_head(txn)
            if stored is None:
                return None
            head = stored.head
            if isinstance(scope, FullGraph):
                nodes = self._all_nodes(txn.read_all_nodes())
                leaf = head.leaf_node_id
            else:
                leaf = scope.leaf_node_id or head.leaf_node_id
                nodes = self._path_nodes(txn.read_path(leaf), leaf)[::-1] if leaf else []
                if leaf is not None and not nodes:
                    raise InvalidGraphError(f"node {leaf!r} is not in session {self.session_id!r}")
            ledger = tuple(
                LedgerEntry(s, m, codec.decode(raw, TokenUsage, self._ledger_label(s, m)))
                for (s, m), raw in txn.read_ledger().items()
            )
        manifest = head.manifest
        checkpoint = HydratedCheckpoint(
            turn_state=manifest.turn_state,
            tool_state=self._blob(manifest.tool_state_ref, ToolState, BlobKind.TOOL_STATE),
            plugin_snapshot=self._blob(manifest.plugin_snapshot_ref, PluginSnapshot, BlobKind.PLUGIN_SNAPSHOT),
            execution_state=self._blob(manifest.execution_state_ref, bytes, BlobKind.EXECUTION_STATE),
        )
        return SessionRead(
            session_id=self.session_id,
            head_revision=head.revision,
            config=head.config,
            graph=SessionGraph.from_nodes(nodes, leaf),
            checkpoint_ref=head.checkpoint_ref,
            checkpoint=checkpoint,
            token_ledger=ledger,
            agent_frames=head.agent_frames,
            current_agent_frame_id=head.current_agent_frame_id,
        )

    def load_head(self) -> Head | None:
        """The head record without nodes or blobs (cheap)."""
        with self._txn(write=False) as txn:
            stored = self._read_head(txn)
        return None if stored is None else stored.head

    def load_summary(self) -> tuple[Head, SessionSummary] | None:
        """The head and its summary counts, or None before the first commit."""
        with self._txn(write=False) as txn:
            stored = self._read_head(txn)
        return None if stored is None else (stored.head, stored.summary)

    def _ledger_label(self, source: str, model: str) -> str:
        return f"ledger entry ({source!r}, {model!r}) of session {self.session_id!r}"

    def load_node(self, node_id: str) -> Node | None:
        with self._txn(write=False) as txn:
            raw = txn.read_nodes([node_id]).get(node_id)
        return None if raw is None else self._node(raw, node_id)

    def load_meta(self) -> SessionMeta | None:
        with self._txn(write=False) as txn:
            raw = txn.read_meta()
        return None if raw is None else codec.decode(raw, SessionMeta, f"meta of session {self.session_id!r}")

    # -- writes ---------------------------------------------------------------------------

    def save_meta(self, meta: SessionMeta) -> None:
        if meta.session_id != self.session_id:
            raise SessionBindingMismatch(self.session_id, meta.session_id)
        data = codec.encode(meta)
        with self._txn(write=True) as txn:
            txn.write_meta(data)

    def commit(self, commit: Commit) -> CommitResult:
        if commit.session_id != self.session_id:
            raise SessionBindingMismatch(self.session_id, commit.session_id)
        encoded = _encode_delta(commit.graph)  # encode first: a bad body fails before any write
        with self._txn(write=True) as txn:
            stored = self._read_head(txn)
            actual = stored.head.revision if stored else None
            if commit.expected_head_revision != actual:
                raise HeadRevisionConflict(commit.expected_head_revision, actual)
            summary = self._apply_graph(txn, commit.graph, encoded, stored)
            _merge_ledger(txn, commit.usage_deltas, self._ledger_label)
            manifest, checkpoint_ref = self._write_snapshots(
                commit.checkpoint, stored.head.manifest if stored else None
            )
            revision = 1 if actual is None else actual + 1
            head = Head(
                revision=revision,
                config=commit.config,
                leaf_node_id=_delta_leaf(commit.graph),
                checkpoint_ref=checkpoint_ref,
                manifest=manifest,
                agent_frames=tuple(commit.agent_frames),
                current_agent_frame_id=commit.current_agent_frame_id,
                committed_at=time.time(),
            )
            new_head = StoredHead(head, summary)
            data = codec.encode(new_head)
            txn.write_head(revision, data)
        self._last_head = (data, new_head)
        return CommitResult(revision, checkpoint_ref, manifest)

    def _apply_graph(
        self,
        txn: StorageTransaction,
        delta: Unchanged | Append | ReplaceFull,
        encoded: list[StoredNode],
        stored: StoredHead | None,
    ) -> SessionSummary:
        summary = stored.summary if stored else SessionSummary()
        if isinstance(delta, ReplaceFull):
            leaf = delta.graph.leaf_node_id
            if leaf is not None and leaf not in delta.graph.nodes:
                raise InvalidGraphError(f"ReplaceFull leaf {leaf!r} is not in the graph it replaces")
            txn.clear_nodes()
            txn.insert_nodes(encoded)
            return SessionSummary().add(delta.graph.nodes.values())
        new_nodes: tuple[Node, ...] = delta.nodes if isinstance(delta, Append) else ()
        batch = {n.node_id: n for n in new_nodes}
        existing = txn.read_nodes(batch.keys(), include_tombstoned=True) if batch else {}
        for node_id, raw in existing.items():
            if self._node(raw, node_id) != batch[node_id]:
                raise InvalidGraphError(f"node id {node_id!r} already exists with other content")
        fresh = [n for n in new_nodes if n.node_id not in existing]
        # Every parent and the leaf must exist: in this batch (earlier) or in the store.
        needed: set[str] = set()
        seen: set[str] = set()
        for node in fresh:
            if node.parent_id is not None and node.parent_id not in seen:
                needed.add(node.parent_id)
            seen.add(node.node_id)
        leaf = _delta_leaf(delta)
        if leaf is not None and leaf not in seen:
            needed.add(leaf)
        if stored is not None and stored.head.leaf_node_id is not None:
            needed.discard(stored.head.leaf_node_id)  # visible for sure: tombstone_nodes refuses the head's path
        if needed:  # a re-sent node that is tombstoned stays hidden: it can be neither a parent nor the leaf
            missing = needed - txn.read_nodes(needed).keys()
            if missing:
                raise InvalidGraphError(f"unknown or tombstoned node(s) referenced by commit: {sorted(missing)}")
        if fresh:
            txn.insert_nodes([s for s in encoded if s.node_id not in existing])
        return summary.add(fresh)

    def _write_snapshots(
        self, checkpoint: HydratedCheckpoint, previous: Checkpoint | None
    ) -> tuple[Checkpoint, BlobRef]:
        """Store the changed snapshot blobs and the manifest naming them; the manifest and its ref.

        A ref is the SHA-256 of the content, so the manifest is built before anything is
        uploaded and every blob of the commit goes to the store in one :func:`put_all`
        (concurrent requests on S3: about one round trip instead of one per blob).
        """
        prev = previous or Checkpoint()
        writes: list[tuple[BlobWrite, BlobRef]] = []
        ref_for = content_ref(self.blobs)
        tools, plugins = checkpoint.tool_state, checkpoint.plugin_snapshot
        tool_gen = tools.generation if tools is not None else None
        plugin_rev = plugins.revision if plugins is not None else None
        exec_ref = None
        if checkpoint.execution_state is not None:
            exec_ref = _stage(writes, ref_for, checkpoint.execution_state, BlobKind.EXECUTION_STATE)
        manifest = Checkpoint(
            turn_state=checkpoint.turn_state,
            tool_state_ref=self._snapshot_ref(
                writes, ref_for, tools, tool_gen, prev.tool_state_ref, prev.tool_state_generation, BlobKind.TOOL_STATE
            ),
            plugin_snapshot_ref=self._snapshot_ref(
                writes,
                ref_for,
                plugins,
                plugin_rev,
                prev.plugin_snapshot_ref,
                prev.plugin_snapshot_revision,
                BlobKind.PLUGIN_SNAPSHOT,
            ),
            plugin_snapshot_revision=plugin_rev,
            execution_state_ref=exec_ref,
            tool_state_generation=tool_gen,
        )
        checkpoint_ref = _stage(writes, ref_for, codec.encode(manifest), BlobKind.CHECKPOINT_MANIFEST, hints=())
        stored = put_all(self.blobs, [write for write, _ in writes])
        for (_, want), got in zip(writes, stored, strict=True):
            if want != got:
                raise BlobIntegrityError(want, f"the blob store returned ref {got} for this content")
        return manifest, checkpoint_ref

    def _snapshot_ref(
        self,
        writes: list[tuple[BlobWrite, BlobRef]],
        ref_for: Callable[[bytes], BlobRef],
        record: object,
        version: int | None,
        prev_ref: BlobRef | None,
        prev_version: int | None,
        kind: str,
    ) -> BlobRef | None:
        """The blob of a snapshot, reusing the previous one when its generation/revision is unchanged."""
        if record is None:
            return None
        if prev_ref is not None and prev_version == version:
            return prev_ref
        return _stage(writes, ref_for, codec.encode(record), kind)

    # -- maintenance ----------------------------------------------------------------------

    def tombstone_nodes(self, node_ids: Iterable[str]) -> int:
        ids = set(node_ids)
        if not ids:
            return 0
        with self._txn(write=True) as txn:
            stored = self._read_head(txn)
            if stored is not None and stored.head.leaf_node_id is not None:
                leaf = stored.head.leaf_node_id
                on_path = {n.node_id for n in self._path_nodes(txn.read_path(leaf), leaf)}
                if ids & on_path:
                    raise InvalidGraphError(
                        f"cannot tombstone node(s) on the head's active path: {sorted(ids & on_path)[:5]}"
                    )
            # Read before writing: a backend may stage writes until the transaction ends.
            visible = self._all_nodes(txn.read_all_nodes()) if stored is not None else []
            hidden = txn.tombstone_nodes(ids)
            if stored is not None and hidden:
                summary = SessionSummary().add(n for n in visible if n.node_id not in ids)
                txn.write_head(stored.head.revision, codec.encode(attrs.evolve(stored, summary=summary)))
        return hidden

    def vacuum(self) -> VacuumReport:
        with self._txn(write=True) as txn:
            removed = txn.vacuum()
        self._scrub()
        return VacuumReport(removed)

    def _scrub(self) -> None:
        if isinstance(self.storage, ScrubbingStorage):
            self.storage.scrub()

    def mark_deleted(self, expected_head_revision: ExpectedRevision = ANY_REVISION) -> None:
        """Step one of a delete: mark the head deleted, if it is still at ``expected_head_revision``.

        Inside the session's write transaction, so a commit lands either before (the
        revision moved: :class:`HeadRevisionConflict`, nothing changes) or after (it finds
        the mark and raises :class:`SessionDeletedError` instead of writing into storage
        that is about to disappear).
        """
        with self._txn(write=True) as txn:
            stored = self._read_head(txn, deleted_ok=True)
            live = stored if stored is not None and stored.deleted_at is None else None
            actual = live.head.revision if live else None
            if expected_head_revision is not ANY_REVISION and expected_head_revision != actual:
                raise HeadRevisionConflict(expected_head_revision, actual)
            # A session never committed gets a placeholder head: only its mark is ever read.
            head = live.head if live else Head(0, SessionConfig(), None, blob_ref_for(b""), Checkpoint())
            txn.write_head(head.revision, codec.encode(StoredHead(head, deleted_at=time.time())))

    def gc_unreachable(self) -> GcReport:
        if self._shared_gc is not None:
            return self._shared_gc()
        with self._txn(write=True) as txn:  # serialises with commits writing blobs
            stored = self._read_head(txn)
            roots = head_roots(stored.head) if stored else set()
            doomed, kept = collectable(stored_blobs(self.blobs), roots, grace_seconds=0)
            deleted = self.blobs.delete(doomed) if doomed else 0
        if deleted:
            self._scrub()
        return GcReport(len(roots), kept, deleted)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.storage.close()


def session_info(session_id: str, meta: SessionMeta | None, head: Head | None, summary: SessionSummary) -> SessionInfo:
    """The picker row of a session, from its meta and its head's summary (never its nodes)."""
    return SessionInfo(
        session_id=session_id,
        cwd=meta.cwd if meta else None,
        parent_session_id=meta.parent_session_id if meta else None,
        first_user_message=summary.first_user_message,
        user_message_count=summary.user_message_count,
        head_revision=head.revision if head else None,
    )


def head_roots(head: Head) -> set[BlobRef]:
    """The blobs a head keeps alive: its manifest and the refs inside it."""
    return {head.checkpoint_ref, *head.manifest.blob_refs()}


def stored_blobs(blobs: BlobStore) -> Iterator[StoredBlob]:
    """Every blob with its age where the store knows it."""
    if isinstance(blobs, EnvelopeBlobStore):
        return blobs.storage.list()
    return (StoredBlob(ref) for ref in blobs.refs())


def _stage(
    writes: list[tuple[BlobWrite, BlobRef]],
    ref_for: Callable[[bytes], BlobRef],
    data: bytes,
    kind: str,
    hints: tuple[str, ...] = (BlobHint.COMPRESSIBLE,),
) -> BlobRef:
    """Queue ``data`` for :func:`put_all` and return the ref it will be stored under."""
    write = BlobWrite(bytes(data), kind, hints)
    ref = ref_for(write.data)  # hashed once: the manifest names it, and put_all's answer is checked against it
    writes.append((write, ref))
    return ref


def _delta_leaf(delta: Unchanged | Append | ReplaceFull) -> str | None:
    return delta.graph.leaf_node_id if isinstance(delta, ReplaceFull) else delta.leaf_node_id


def _encode_delta(delta: Unchanged | Append | ReplaceFull) -> list[StoredNode]:
    if isinstance(delta, ReplaceFull):
        nodes: Iterable[Node] = delta.graph.nodes.values()
    elif isinstance(delta, Append):
        nodes = delta.nodes
    elif isinstance(delta, Unchanged):
        nodes = ()
    else:
        raise TypeError(f"commit.graph must be Unchanged, Append or ReplaceFull, not {type(delta).__name__}")
    return [StoredNode(n.node_id, n.parent_id, codec.encode(n)) for n in nodes]


def _merge_ledger(
    txn: StorageTransaction, deltas: Iterable[LedgerEntry], label: Callable[[str, str], str]
) -> None:
    merged: dict[LedgerKey, TokenUsage] = {}
    for entry in deltas:
        if entry.usage.total != 0:
            merged[entry.key] = merged.get(entry.key, TokenUsage()) + entry.usage
    if not merged:
        return
    stored = txn.read_ledger(merged.keys())
    rows = {}
    for key, usage in merged.items():
        if key in stored:
            usage = codec.decode(stored[key], TokenUsage, label(*key)) + usage
        rows[key] = codec.encode(usage)
    txn.write_ledger(rows)


# --- a base class for backends built from primitives ------------------------------------


class StorageBackend(ABC):
    """A :class:`Backend` from per-session :class:`SessionStorage` primitives.

    Subclasses implement ``_open_storage``, ``_session_blobs``, ``_session_ids``,
    ``_delete_storage`` and ``_close``; sessions, listing, composition with an external
    blob store (``[blobs]`` in config) and GC are shared here.
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

    def open_session(self, session_id: str, *, create: bool = True) -> StandardSessionStore | None:
        session_id = check_session_id(session_id)
        storage = self._open_storage(session_id, create=create)
        if storage is None:
            return None
        blobs = self._external_blobs or self._session_blobs(storage)
        if self.encryption is not None:
            storage, blobs = self.encryption.session_storage(session_id, storage), self.encryption.blob_store(blobs)
        return StandardSessionStore(session_id, storage, blobs, shared_gc=self.gc if self._shares_blobs() else None)

    def delete_session(self, session_id: str, *, expected_head_revision: ExpectedRevision = ANY_REVISION) -> bool:
        """Mark the session deleted (a compare-and-delete when given a revision), then remove its storage.

        The mark is written in the session's write transaction by the core, so every backend
        gets the check and no store that still has the session open can commit into it.
        """
        session_id = check_session_id(session_id)
        store = self.open_session(session_id, create=False)
        if store is None:
            if expected_head_revision is not ANY_REVISION and expected_head_revision is not None:
                raise HeadRevisionConflict(expected_head_revision, None)
            return False
        try:
            store.mark_deleted(expected_head_revision)
        finally:
            store.close()
        return self._delete_storage(session_id)

    def session_ids(self) -> list[str]:
        """Ids of every stored session."""
        return self._session_ids()

    def list_sessions(self) -> list[SessionInfo]:
        infos = []
        for session_id in self._session_ids():
            store = self.open_session(session_id, create=False)
            if store is None:
                continue
            try:
                meta = store.load_meta()
                loaded = store.load_summary()
            except SessionDeletedError:  # being deleted right now
                continue
            finally:
                store.close()
            head, summary = loaded if loaded else (None, SessionSummary())
            infos.append(session_info(session_id, meta, head, summary))
        return infos

    def _heads(self) -> Iterator[Head]:
        for session_id in self._session_ids():
            store = self.open_session(session_id, create=False)
            if store is None:
                continue
            try:
                head = store.load_head()
            except SessionDeletedError:  # being deleted: its blobs are no longer roots
                continue
            finally:
                store.close()
            if head is not None:
                yield head

    def gc(self) -> GcReport:
        if not self._shares_blobs():
            reports = []
            for session_id in self._session_ids():
                store = self.open_session(session_id, create=False)
                if store is not None:
                    try:
                        reports.append(store.gc_unreachable())
                    except SessionDeletedError:  # its storage goes with it
                        pass
                    finally:
                        store.close()
            return GcReport(
                sum(r.root_count for r in reports),
                sum(r.retained_blob_count for r in reports),
                sum(r.deleted_blob_count for r in reports),
            )
        blobs = self.blobs
        assert blobs is not None
        return collect_shared_blobs(blobs, self._heads, self.gc_grace_seconds)

    def close(self) -> None:
        self._close()


def collect_shared_blobs(blobs: BlobStore, heads: Callable[[], Iterable[Head]], grace_seconds: float) -> GcReport:
    """Delete blobs of a store shared by many sessions that no head references.

    A blob of a commit in flight survives because: blobs younger than ``grace_seconds`` are
    kept; roots (``heads()``) are collected before the listing and again after it, so a
    commit that landed meanwhile counts; and the delete re-checks each blob's age against
    the cutoff taken before the listing (``older_than``), so a blob that a commit reused
    after the listing (a write refreshes its age) is not deleted on the listing's word.
    """
    roots = _roots(heads())
    cutoff = time.time() - grace_seconds
    listed = list(stored_blobs(blobs))
    roots |= _roots(heads())
    doomed, kept = collectable(listed, roots, grace_seconds, now=cutoff + grace_seconds)
    if not doomed:
        deleted = 0
    elif isinstance(blobs, EnvelopeBlobStore):
        deleted = blobs.delete(doomed, older_than=cutoff)
    else:  # a store without ages: the listing is all there is to go on
        deleted = blobs.delete(doomed)
    return GcReport(len(roots), kept + len(doomed) - deleted, deleted)


def _roots(heads: Iterable[Head]) -> set[BlobRef]:
    roots: set[BlobRef] = set()
    for head in heads:
        roots |= head_roots(head)
    return roots
