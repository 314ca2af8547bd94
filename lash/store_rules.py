"""The rules of every session store and storage backend, written once for the sync and the async face.

Commit (head compare-and-swap, graph checks, ledger merge, snapshot blobs), loads, meta,
tombstones, vacuum, the delete mark, blob GC, and the backend-wide delete, listing and GC
are generators that do no I/O. Each *yields* a request and *receives* its result (or has
its exception thrown in at the ``yield``):

* ``(function, args)``: one primitive call, e.g. ``(txn.read_head, ())`` or
  ``(blobs.put_all, (writes,))``. The function belongs to whatever face the rules were
  given: a :class:`~lash.store.StorageTransaction` and :class:`BlobCalls` for the sync
  store, their async counterparts for the async one;
* :class:`Transaction`: run ``body(txn)`` (more rules) inside one storage transaction.

:func:`run` answers with plain calls (:class:`~lash.store.StandardSessionStore`,
:class:`~lash.store.StorageBackend`); :func:`drive` answers with ``await``
(:class:`lash.aio.store.AsyncStandardSessionStore`, :class:`lash.aio.store.AsyncStorageBackend`).

Why generators, one level below :mod:`lash.operations` (which does the same for sessions):
a native async backend (lash-postgres over ``AsyncConnectionPool``) must apply exactly the
rules the sync stores apply, and a copy of a compare-and-swap is a bug waiting for a
divergence. Requests are plain tuples and the sync driver is a loop of direct calls, so
the synchronous commit, the hot path of every benchmark, pays a few microseconds for it
(one generator step per primitive, one nested drive per transaction).
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Final, Literal, Protocol, TypeVar

import attrs

from lash import codec
from lash.blobs import BlobStore, BlobWrite, EnvelopeBlobStore, StoredBlob, collectable, put_all
from lash.errors import (
    BlobIntegrityError,
    CorruptRecordError,
    HeadRevisionConflict,
    InvalidGraphError,
    InvalidSessionId,
    LashError,
    SchemaVersionError,
    SessionBindingMismatch,
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

T = TypeVar("T")

MAX_SESSION_ID_LENGTH = 1024

LedgerKey = tuple[str, str]

Rules = Generator[Any, Any, T]
"""A generator of requests (``(function, args)`` or :class:`Transaction`) returning ``T``."""


class Transaction:
    """Ask the driver to run ``body(txn)`` inside one storage transaction.

    A slotted class rather than an attrs record: one is made per store call on the hot path.
    """

    __slots__ = ("body", "write")

    def __init__(self, write: bool, body: Callable[[Any], Rules[Any]]) -> None:
        self.write = write
        self.body = body


TransactionOpener = Callable[[bool], AbstractContextManager[Any]]
AsyncTransactionOpener = Callable[[bool], AbstractAsyncContextManager[Any]]


def run(rules: Rules[T], transaction: TransactionOpener) -> T:
    """Answer ``rules`` with plain calls; ``transaction(write)`` opens a storage transaction."""
    send, throw = rules.send, rules.throw
    outcome: Any = None
    error: Exception | None = None
    while True:
        try:
            request = send(outcome) if error is None else throw(error)
        except StopIteration as done:
            return done.value
        error = None
        try:
            if type(request) is tuple:
                outcome = request[0](*request[1])
            else:
                with transaction(request.write) as txn:
                    outcome = run(request.body(txn), transaction)
        except Exception as exc:
            outcome, error = None, exc


async def drive(rules: Rules[T], transaction: AsyncTransactionOpener) -> T:
    """Answer ``rules`` with ``await``; ``transaction(write)`` opens an async storage transaction."""
    outcome: Any = None
    error: Exception | None = None
    while True:
        try:
            request = rules.send(outcome) if error is None else rules.throw(error)
        except StopIteration as done:
            return done.value
        try:
            if type(request) is tuple:
                outcome = await request[0](*request[1])
            else:
                async with transaction(request.write) as txn:
                    outcome = await drive(request.body(txn), transaction)
            error = None
        except Exception as exc:
            outcome, error = None, exc


def no_transaction(write: bool) -> Any:
    """The opener of rules that never ask for a transaction (backend-level rules)."""
    raise AssertionError("these rules do not open storage transactions")


def closing(store: Any, rules: Rules[T]) -> Rules[T]:
    """``rules``, then ``store.close()`` whether they succeeded or not (their own error wins)."""
    try:
        result = yield from rules
    except GeneratorExit:
        raise
    except BaseException:
        yield (store.close, ())
        raise
    yield (store.close, ())
    return result


# --- session ids and the records the rules keep --------------------------------------------


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


@attrs.frozen
class StoredNode:
    """A node as a backend stores it: id and parent as columns, the record as bytes."""

    node_id: str
    parent_id: str | None
    data: bytes


class _AnyRevision(enum.Enum):
    ANY = "any"


ANY_REVISION: Final = _AnyRevision.ANY
"""``delete_session``'s default: delete whatever revision the head is at."""

ExpectedRevision = int | None | Literal[_AnyRevision.ANY]


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


# --- what the rules call on blobs -----------------------------------------------------------


class BlobCalls:
    """The blob requests of the rules, answered by a synchronous :class:`~lash.blobs.BlobStore`.

    The async faces (:mod:`lash.aio.blobs`) have the same methods, awaitable.
    """

    def __init__(self, blobs: BlobStore) -> None:
        self.store = blobs
        self.ref_for: Callable[[bytes], BlobRef] = getattr(blobs, "ref_for", blob_ref_for)
        """How the store addresses content (keyed under encryption): a manifest names refs before the upload."""

    def put_all(self, writes: Sequence[BlobWrite]) -> list[BlobRef]:
        return put_all(self.store, writes)

    def get(self, ref: BlobRef) -> bytes | None:
        return self.store.get(ref)

    def listing(self) -> list[StoredBlob]:
        return list(stored_blobs(self.store))

    def delete(self, refs: Collection[BlobRef], older_than: float | None = None) -> int:
        if older_than is not None and isinstance(self.store, EnvelopeBlobStore):
            return self.store.delete(refs, older_than=older_than)
        return self.store.delete(refs)  # a store without ages: the listing is all there is to go on


class AnyBlobCalls(Protocol):
    """:class:`BlobCalls` or an async face of it: what :class:`SessionRules` is given."""

    ref_for: Callable[[bytes], BlobRef]

    def put_all(self, writes: Sequence[BlobWrite]) -> Any: ...

    def get(self, ref: BlobRef) -> Any: ...

    def listing(self) -> Any: ...

    def delete(self, refs: Collection[BlobRef], older_than: float | None = None) -> Any: ...


# --- the rules of one session ---------------------------------------------------------------


class SessionRules:
    """Everything a session store decides, as generators over its storage and blob faces.

    ``storage`` is only asked for ``scrub`` (when it has one); transactions come from the
    driver. ``shared_gc`` collects a blob store shared by many sessions (the backend's GC).
    """

    def __init__(
        self,
        session_id: str,
        storage: object,
        blobs: AnyBlobCalls,
        shared_gc: Callable[[], Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.storage = storage
        self.blobs = blobs
        self.shared_gc = shared_gc
        self._last_head: tuple[bytes, StoredHead] | None = None
        """The head record last read or written, with its bytes: a commit re-reads the head it wrote."""

    # -- decoding -------------------------------------------------------------------------

    def head(self, raw: bytes | None, deleted_ok: bool = False) -> StoredHead | None:
        """Decode the head record ``txn.read_head()`` returned (a plain call: it is on every store call's path)."""
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

    def read_head(self, txn: Any) -> Rules[StoredHead | None]:
        return self.head((yield (txn.read_head, ())))

    def _node(self, raw: bytes, node_id: str | None) -> Node:
        """Decode a node record; ``node_id`` is what the caller asked for (None: unknown)."""
        name = "a node" if node_id is None else f"node {node_id!r}"
        return codec.decode(raw, Node, f"{name} of session {self.session_id!r}")

    def _path_nodes(self, raws: Sequence[bytes], leaf_id: str) -> list[Node]:
        """Decode ``read_path`` records (leaf first), naming each by the id asked for."""
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

    def _ledger_label(self, source: str, model: str) -> str:
        return f"ledger entry ({source!r}, {model!r}) of session {self.session_id!r}"

    def _blob(self, ref: BlobRef | None, cls: type, kind: str) -> Rules[Any]:
        if ref is None:
            return None
        what = f"{kind} blob of session {self.session_id!r}"
        try:
            data = yield (self.blobs.get, (ref,))
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

    def load_session(self, scope: ReadScope) -> Rules[SessionRead | None]:
        if not isinstance(scope, FullGraph | ActivePath):
            raise UnsupportedReadScope(scope)
        read = yield Transaction(False, lambda txn: self._read_graph(txn, scope))
        if read is None:
            return None
        head, nodes, leaf, ledger = read
        manifest = head.manifest
        checkpoint = HydratedCheckpoint(
            turn_state=manifest.turn_state,
            tool_state=(yield from self._blob(manifest.tool_state_ref, ToolState, BlobKind.TOOL_STATE)),
            plugin_snapshot=(
                yield from self._blob(manifest.plugin_snapshot_ref, PluginSnapshot, BlobKind.PLUGIN_SNAPSHOT)
            ),
            execution_state=(yield from self._blob(manifest.execution_state_ref, bytes, BlobKind.EXECUTION_STATE)),
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

    def _read_graph(
        self, txn: Any, scope: FullGraph | ActivePath
    ) -> Rules[tuple[Head, list[Node], str | None, tuple[LedgerEntry, ...]] | None]:
        stored = self.head((yield (txn.read_head, ())))
        if stored is None:
            return None
        head = stored.head
        if isinstance(scope, FullGraph):
            nodes = self._all_nodes((yield (txn.read_all_nodes, ())))
            leaf = head.leaf_node_id
        else:
            leaf = scope.leaf_node_id or head.leaf_node_id
            nodes = self._path_nodes((yield (txn.read_path, (leaf,))), leaf)[::-1] if leaf else []
            if leaf is not None and not nodes:
                raise InvalidGraphError(f"node {leaf!r} is not in session {self.session_id!r}")
        rows = yield (txn.read_ledger, ())
        ledger = tuple(
            LedgerEntry(s, m, codec.decode(raw, TokenUsage, self._ledger_label(s, m))) for (s, m), raw in rows.items()
        )
        return head, nodes, leaf, ledger

    def load_stored_head(self) -> Rules[StoredHead | None]:
        """The head record with its summary (cheap: no nodes, no blobs)."""
        return (yield Transaction(False, self.read_head))

    def load_node(self, node_id: str) -> Rules[Node | None]:
        found = yield Transaction(False, lambda txn: _one((txn.read_nodes, ([node_id],))))
        raw = found.get(node_id)
        return None if raw is None else self._node(raw, node_id)

    def load_meta(self) -> Rules[SessionMeta | None]:
        raw = yield Transaction(False, lambda txn: _one((txn.read_meta, ())))
        return None if raw is None else codec.decode(raw, SessionMeta, f"meta of session {self.session_id!r}")

    # -- writes ---------------------------------------------------------------------------

    def save_meta(self, meta: SessionMeta) -> Rules[None]:
        if meta.session_id != self.session_id:
            raise SessionBindingMismatch(self.session_id, meta.session_id)
        data = codec.encode(meta)
        yield Transaction(True, lambda txn: _one((txn.write_meta, (data,))))

    def commit(self, commit: Commit) -> Rules[CommitResult]:
        if commit.session_id != self.session_id:
            raise SessionBindingMismatch(self.session_id, commit.session_id)
        encoded = _encode_delta(commit.graph)  # encode first: a bad body fails before any write
        data, new_head, result = yield Transaction(True, lambda txn: self._commit_in(txn, commit, encoded))
        self._last_head = (data, new_head)
        return result

    def _commit_in(
        self, txn: Any, commit: Commit, encoded: list[StoredNode]
    ) -> Rules[tuple[bytes, StoredHead, CommitResult]]:
        stored = self.head((yield (txn.read_head, ())))
        actual = stored.head.revision if stored else None
        if commit.expected_head_revision != actual:
            raise HeadRevisionConflict(commit.expected_head_revision, actual)
        summary = yield from self._apply_graph(txn, commit.graph, encoded, stored)
        merged = _merged_usage(commit.usage_deltas)
        if merged:
            stored_rows = yield (txn.read_ledger, (merged.keys(),))
            yield (txn.write_ledger, (self._ledger_rows(merged, stored_rows),))
        manifest, checkpoint_ref, writes = self._snapshots(commit.checkpoint, stored.head.manifest if stored else None)
        _check_refs(writes, (yield (self.blobs.put_all, ([write for write, _ in writes],))))
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
        yield (txn.write_head, (revision, data))
        return data, new_head, CommitResult(revision, checkpoint_ref, manifest)

    def _apply_graph(
        self,
        txn: Any,
        delta: Unchanged | Append | ReplaceFull,
        encoded: list[StoredNode],
        stored: StoredHead | None,
    ) -> Rules[SessionSummary]:
        summary = stored.summary if stored else SessionSummary()
        if isinstance(delta, ReplaceFull):
            leaf = delta.graph.leaf_node_id
            if leaf is not None and leaf not in delta.graph.nodes:
                raise InvalidGraphError(f"ReplaceFull leaf {leaf!r} is not in the graph it replaces")
            yield (txn.clear_nodes, ())
            yield (txn.insert_nodes, (encoded,))
            return SessionSummary().add(delta.graph.nodes.values())
        new_nodes: tuple[Node, ...] = delta.nodes if isinstance(delta, Append) else ()
        batch = {n.node_id: n for n in new_nodes}
        existing = (yield (_read_any_nodes, (txn, batch.keys()))) if batch else {}
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
            missing = needed - (yield (txn.read_nodes, (needed,))).keys()
            if missing:
                raise InvalidGraphError(f"unknown or tombstoned node(s) referenced by commit: {sorted(missing)}")
        if fresh:
            yield (txn.insert_nodes, ([s for s in encoded if s.node_id not in existing],))
        return summary.add(fresh)

    def _ledger_rows(
        self, merged: Mapping[LedgerKey, TokenUsage], stored: Mapping[LedgerKey, bytes]
    ) -> dict[LedgerKey, bytes]:
        """The ledger rows to write: each merged delta added to the row already stored for its key."""
        rows = {}
        for key, usage in merged.items():
            if key in stored:
                usage = codec.decode(stored[key], TokenUsage, self._ledger_label(*key)) + usage
            rows[key] = codec.encode(usage)
        return rows

    def _snapshots(
        self, checkpoint: HydratedCheckpoint, previous: Checkpoint | None
    ) -> tuple[Checkpoint, BlobRef, list[tuple[BlobWrite, BlobRef]]]:
        """The manifest, its ref, and the blobs to store: the changed snapshots and the manifest.

        A ref is the SHA-256 of the content, so the manifest is built before anything is
        uploaded and every blob of the commit goes to the store in one ``put_all``
        (concurrent requests on S3: about one round trip instead of one per blob).
        """
        prev = previous or Checkpoint()
        writes: list[tuple[BlobWrite, BlobRef]] = []
        ref_for = self.blobs.ref_for
        tools, plugins = checkpoint.tool_state, checkpoint.plugin_snapshot
        tool_gen = tools.generation if tools is not None else None
        plugin_rev = plugins.revision if plugins is not None else None
        exec_ref = None
        if checkpoint.execution_state is not None:
            exec_ref = _stage(writes, ref_for, checkpoint.execution_state, BlobKind.EXECUTION_STATE)
        manifest = Checkpoint(
            turn_state=checkpoint.turn_state,
            tool_state_ref=_snapshot_ref(
                writes, ref_for, tools, tool_gen, prev.tool_state_ref, prev.tool_state_generation, BlobKind.TOOL_STATE
            ),
            plugin_snapshot_ref=_snapshot_ref(
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
        return manifest, checkpoint_ref, writes

    # -- maintenance ----------------------------------------------------------------------

    def tombstone_nodes(self, node_ids: Iterable[str]) -> Rules[int]:
        ids = set(node_ids)
        if not ids:
            return 0
        return (yield Transaction(True, lambda txn: self._tombstone_in(txn, ids)))

    def _tombstone_in(self, txn: Any, ids: set[str]) -> Rules[int]:
        stored = self.head((yield (txn.read_head, ())))
        if stored is not None and stored.head.leaf_node_id is not None:
            leaf = stored.head.leaf_node_id
            on_path = {n.node_id for n in self._path_nodes((yield (txn.read_path, (leaf,))), leaf)}
            if ids & on_path:
                raise InvalidGraphError(
                    f"cannot tombstone node(s) on the head's active path: {sorted(ids & on_path)[:5]}"
                )
        # Read before writing: a backend may stage writes until the transaction ends.
        visible = self._all_nodes((yield (txn.read_all_nodes, ()))) if stored is not None else []
        hidden = yield (txn.tombstone_nodes, (ids,))
        if stored is not None and hidden:
            summary = SessionSummary().add(n for n in visible if n.node_id not in ids)
            yield (txn.write_head, (stored.head.revision, codec.encode(attrs.evolve(stored, summary=summary))))
        return hidden

    def vacuum(self) -> Rules[VacuumReport]:
        removed = yield Transaction(True, lambda txn: _one((txn.vacuum, ())))
        yield from self._scrub()
        return VacuumReport(removed)

    def _scrub(self) -> Rules[None]:
        scrub = getattr(self.storage, "scrub", None)
        if scrub is not None:
            yield (scrub, ())

    def mark_deleted(self, expected_head_revision: ExpectedRevision) -> Rules[None]:
        """Step one of a delete: mark the head deleted, if it is still at ``expected_head_revision``.

        Inside the session's write transaction, so a commit lands either before (the
        revision moved: :class:`HeadRevisionConflict`, nothing changes) or after (it finds
        the mark and raises :class:`SessionDeletedError` instead of writing into storage
        that is about to disappear).
        """
        yield Transaction(True, lambda txn: self._mark_deleted_in(txn, expected_head_revision))

    def _mark_deleted_in(self, txn: Any, expected_head_revision: ExpectedRevision) -> Rules[None]:
        stored = self.head((yield (txn.read_head, ())), deleted_ok=True)
        live = stored if stored is not None and stored.deleted_at is None else None
        actual = live.head.revision if live else None
        if expected_head_revision is not ANY_REVISION and expected_head_revision != actual:
            raise HeadRevisionConflict(expected_head_revision, actual)
        # A session never committed gets a placeholder head: only its mark is ever read.
        head = live.head if live else Head(0, SessionConfig(), None, blob_ref_for(b""), Checkpoint())
        yield (txn.write_head, (head.revision, codec.encode(StoredHead(head, deleted_at=time.time()))))

    def gc_unreachable(self) -> Rules[GcReport]:
        if self.shared_gc is not None:
            return (yield (self.shared_gc, ()))
        report = yield Transaction(True, self._gc_in)  # serialises with commits writing blobs
        if report.deleted_blob_count:
            yield from self._scrub()
        return report

    def _gc_in(self, txn: Any) -> Rules[GcReport]:
        stored = self.head((yield (txn.read_head, ())))
        roots = head_roots(stored.head) if stored else set()
        doomed, kept = collectable((yield (self.blobs.listing, ())), roots, grace_seconds=0)
        deleted = (yield (self.blobs.delete, (doomed,))) if doomed else 0
        return GcReport(len(roots), kept, deleted)


def _merged_usage(deltas: Iterable[LedgerEntry]) -> dict[LedgerKey, TokenUsage]:
    """The commit's usage deltas summed per ledger key (zero totals dropped)."""
    merged: dict[LedgerKey, TokenUsage] = {}
    for entry in deltas:
        if entry.usage.total != 0:
            merged[entry.key] = merged.get(entry.key, TokenUsage()) + entry.usage
    return merged


def _check_refs(writes: Sequence[tuple[BlobWrite, BlobRef]], stored: Sequence[BlobRef]) -> None:
    """Refuse a blob store that stored content under another ref than the manifest names."""
    for (_, want), got in zip(writes, stored, strict=True):
        if want != got:
            raise BlobIntegrityError(want, f"the blob store returned ref {got} for this content")


def _read_any_nodes(txn: Any, node_ids: Collection[str]) -> Any:
    """``txn.read_nodes`` including tombstoned nodes (its result, or its awaitable on an async transaction)."""
    return txn.read_nodes(node_ids, include_tombstoned=True)


def _one(request: tuple[Any, tuple[Any, ...]]) -> Rules[Any]:
    """Rules of a single primitive call (a transaction body that does one thing)."""
    return (yield request)


def _snapshot_ref(
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


def _stage(
    writes: list[tuple[BlobWrite, BlobRef]],
    ref_for: Callable[[bytes], BlobRef],
    data: bytes,
    kind: str,
    hints: tuple[str, ...] = (BlobHint.COMPRESSIBLE,),
) -> BlobRef:
    """Queue ``data`` for ``put_all`` and return the ref it will be stored under."""
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


# --- the rules of a backend built from primitives ---------------------------------------------


class BackendFace(Protocol):
    """What the backend rules call on a :class:`~lash.store.StorageBackend` or its async counterpart.

    The methods are plain on the sync backend and awaitable on the async one.
    """

    gc_grace_seconds: float

    def _open_store(self, session_id: str, create: bool) -> Any: ...

    def _session_ids(self) -> Any: ...

    def _delete_storage(self, session_id: str) -> Any: ...

    def _live_heads(self) -> Any: ...

    def _shares_blobs(self) -> bool: ...

    def _shared_blob_calls(self) -> AnyBlobCalls: ...


def delete_session(face: BackendFace, session_id: str, expected_head_revision: ExpectedRevision) -> Rules[bool]:
    """Mark the session deleted (a compare-and-delete when given a revision), then remove its storage.

    The mark is written in the session's write transaction by the core, so every backend
    gets the check and no store that still has the session open can commit into it.
    """
    session_id = check_session_id(session_id)
    store = yield (face._open_store, (session_id, False))
    if store is None:
        if expected_head_revision is not ANY_REVISION and expected_head_revision is not None:
            raise HeadRevisionConflict(expected_head_revision, None)
        return False
    yield from closing(store, _one((store.mark_deleted, (expected_head_revision,))))
    return (yield (face._delete_storage, (session_id,)))


def list_sessions(face: BackendFace) -> Rules[list[SessionInfo]]:
    """The picker row of every session, from heads and meta (one session at a time)."""
    infos = []
    for session_id in (yield (face._session_ids, ())):
        store = yield (face._open_store, (session_id, False))
        if store is None:
            continue
        try:
            meta, loaded = yield from closing(store, _meta_and_summary(store))
        except SessionDeletedError:  # being deleted right now
            continue
        head, summary = loaded if loaded else (None, SessionSummary())
        infos.append(session_info(session_id, meta, head, summary))
    return infos


def _meta_and_summary(store: Any) -> Rules[tuple[SessionMeta | None, tuple[Head, SessionSummary] | None]]:
    meta = yield (store.load_meta, ())
    return meta, (yield (store.load_summary, ()))


def live_heads(face: BackendFace) -> Rules[list[Head]]:
    """Every live head (one session at a time): the GC roots of a shared blob store."""
    heads = []
    for session_id in (yield (face._session_ids, ())):
        store = yield (face._open_store, (session_id, False))
        if store is None:
            continue
        try:
            head = yield from closing(store, _one((store.load_head, ())))
        except SessionDeletedError:  # being deleted: its blobs are no longer roots
            continue
        if head is not None:
            heads.append(head)
    return heads


def gc(face: BackendFace) -> Rules[GcReport]:
    """Collect unreachable blobs: per session when each keeps its own, else across the shared store."""
    if face._shares_blobs():
        return (yield from collect_shared(face._shared_blob_calls(), face._live_heads, face.gc_grace_seconds))
    reports = []
    for session_id in (yield (face._session_ids, ())):
        store = yield (face._open_store, (session_id, False))
        if store is not None:
            with contextlib.suppress(SessionDeletedError):  # its storage goes with it
                reports.append((yield from closing(store, _one((store.gc_unreachable, ())))))
    return GcReport(
        sum(r.root_count for r in reports),
        sum(r.retained_blob_count for r in reports),
        sum(r.deleted_blob_count for r in reports),
    )


def collect_shared(blobs: AnyBlobCalls, heads: Callable[[], Any], grace_seconds: float) -> Rules[GcReport]:
    """Delete blobs of a store shared by many sessions that no head references.

    A blob of a commit in flight survives because: blobs younger than ``grace_seconds`` are
    kept; roots (``heads()``) are collected before the listing and again after it, so a
    commit that landed meanwhile counts; and the delete re-checks each blob's age against
    the cutoff taken before the listing (``older_than``), so a blob that a commit reused
    after the listing (a write refreshes its age) is not deleted on the listing's word.
    """
    roots = _roots((yield (heads, ())))
    cutoff = time.time() - grace_seconds
    listed = yield (blobs.listing, ())
    roots |= _roots((yield (heads, ())))
    doomed, kept = collectable(listed, roots, grace_seconds, now=cutoff + grace_seconds)
    deleted = (yield (blobs.delete, (doomed, cutoff))) if doomed else 0
    return GcReport(len(roots), kept + len(doomed) - deleted, deleted)


def _roots(heads: Iterable[Head]) -> set[BlobRef]:
    roots: set[BlobRef] = set()
    for head in heads:
        roots |= head_roots(head)
    return roots
