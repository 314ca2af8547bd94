"""Every multi-step runtime operation, written once for the sync and the async face.

Opening a session, committing, compacting, refreshing, pruning and loading a branch are
generators that do no I/O. Each *yields* a request, a :class:`Call` of one method of the
storage contract or an :class:`Offload` of blocking plugin work, and *receives* its result
(or has its exception thrown in at the ``yield``). The rules in between (building the
commit, applying its result, re-basing) are plain calls into the sans-I/O
:class:`~lash.session.SessionState`, and plugin hooks (pluggy, synchronous) run inline.

:func:`run` answers the requests with plain calls: that is :class:`lash.Session`.
``lash.aio`` answers the same requests with ``await`` (a native async store, or the sync
store in its worker pool): that is :class:`lash.aio.Session`.

Why generators: this is psycopg 3's design (``psycopg/generators.py`` yields what to wait
for; ``waiting.wait`` and ``waiting.wait_async`` answer it), applied to storage calls instead
of sockets. The alternatives keep two copies of the logic (httpcore generates its sync
code from the async one with unasync), block or nest event loops (an async core behind a
sync wrapper), or rule out native async backends (a sync core run in threads). With
generators there is one copy, the sync path pays one generator step per storage call,
and the async driver decides where each call runs and what a cancellation does between
two steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from lash import codec
from lash.compaction import CompactionContext, CompactionResult, Compactor
from lash.errors import CompactionError, InvalidGraphError, LashError, SerializationError
from lash.graph import SessionGraph
from lash.model import ActivePath, CommitResult, FullGraph, GcReport, SessionMeta, SessionRead

if TYPE_CHECKING:
    from lash.runtime import LashCore
    from lash.session import Residency, SessionBase, SessionState, UsageReport

T = TypeVar("T")

StorageMethod = Literal[
    # SessionStore / AsyncSessionStore
    "load_session",
    "load_head",
    "load_node",
    "commit",
    "save_meta",
    "load_meta",
    "tombstone_nodes",
    "vacuum",
    "gc_unreachable",
    "close",
    # Backend / AsyncBackend
    "open_session",
    "delete_session",
    "list_sessions",
    "gc",
]


@attrs.frozen
class Call:
    """Ask the driver for ``target.method(*args, **kwargs)``.

    ``target`` is a store or backend *as the driver knows it* (sync for :class:`lash.Session`,
    async for ``lash.aio``): an operation only passes back what it was given or received.
    """

    target: Any
    method: StorageMethod
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)

    def perform(self) -> Any:
        """The call's result (an awaitable when ``target`` is async)."""
        return getattr(self.target, self.method)(*self.args, **self.kwargs)


@attrs.frozen
class Offload:
    """Blocking work of unknown cost (a compactor may call a model): ``lash.aio`` runs it in its worker pool."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()

    def perform(self) -> Any:
        return self.function(*self.args)


Request = Call | Offload
Operation = Generator[Request, Any, T]


def run(operation: Operation[T]) -> T:
    """Drive ``operation`` with plain, blocking calls (the synchronous face)."""
    outcome: Any = None
    error: Exception | None = None
    while True:
        try:
            request = operation.send(outcome) if error is None else operation.throw(error)
        except StopIteration as done:
            return done.value
        try:
            outcome, error = request.perform(), None
        except Exception as exc:
            outcome, error = None, exc


def closing(store: Any, operation: Operation[T]) -> Operation[T]:
    """``operation``, then ``store.close()`` whether it succeeded or not (its own error wins)."""
    try:
        result = yield from operation
    except GeneratorExit:
        raise
    except BaseException:  # includes a cancellation the async driver delivers here
        yield Call(store, "close")
        raise
    yield Call(store, "close")
    return result


# --- reads --------------------------------------------------------------------------------


def load_committed(store: Any, residency: Residency) -> Operation[SessionRead | None]:
    """The committed session, reading as much of the graph as ``residency`` keeps.

    An active-path read whose chain is broken (the head's leaf or an ancestor is gone)
    falls back to the full graph, so that the heal in :meth:`SessionState.apply_read`
    never replaces the stored graph with a fragment.
    """
    if residency == "active_path":
        try:
            read = yield Call(store, "load_session", (ActivePath(),))
        except InvalidGraphError:
            read = None
        else:
            if read is None or not read.graph.nodes or _rooted(read.graph):
                return read
    return (yield Call(store, "load_session", (FullGraph(),)))


def _rooted(graph: SessionGraph) -> bool:
    first = next(iter(graph.nodes.values()))
    return first.parent_id is None


def load_path(state: SessionState, store: Any, node_id: str) -> Operation[None]:
    """Bring ``node_id`` and its path into memory when residency left it out (no-op otherwise)."""
    if node_id in state.graph or state.head_revision is None:
        return
    try:
        read = yield Call(store, "load_session", (ActivePath(node_id),))
    except InvalidGraphError:
        return
    if read is not None:
        state.add_nodes(read.graph.active_path())


def usage_of_children(backend: Any, session_id: str) -> Operation[UsageReport]:
    """Committed usage of every descendant of ``session_id`` (children, their children, ...)."""
    from lash.session import UsageReport  # lash.session imports this module

    children: dict[str | None, list[str]] = {}
    for info in (yield Call(backend, "list_sessions")):
        children.setdefault(info.parent_session_id, []).append(info.session_id)
    report = UsageReport(())
    todo, seen = list(children.get(session_id, ())), {session_id}
    while todo:
        child_id = todo.pop()
        if child_id in seen:
            continue
        seen.add(child_id)
        todo.extend(children.get(child_id, ()))
        store = yield Call(backend, "open_session", (child_id,), {"create": False})
        if store is None:
            continue
        read = yield from closing(store, _load(store, ActivePath()))
        if read is not None:
            report = report + UsageReport(read.token_ledger)
    return report


def _load(store: Any, scope: ActivePath | FullGraph) -> Operation[SessionRead | None]:
    return (yield Call(store, "load_session", (scope,)))


# --- the session lifecycle ----------------------------------------------------------------


def open_session(
    core: LashCore,
    face: SessionBase,
    store: Any,
    *,
    plugin_options: Mapping[str, Any] | None,
    parent_session_id: str | None,
) -> Operation[None]:
    """Resume what ``store`` holds into ``face`` (or start it), then let plugins materialize it."""
    state = face._state
    read = yield from load_committed(store, state.residency)
    meta = yield Call(store, "load_meta")
    if meta is None:
        meta = new_meta(state.session_id, parent_session_id, os.getcwd())
        yield Call(store, "save_meta", (meta,))
    if read is not None:
        state.apply_read(read)
        core.restore_plugins(face, read.checkpoint.plugin_snapshot)
    # A child stays a child when it is reopened directly: the stored meta knows its parent.
    core.plugin_manager.hook.lash_materialize_session(
        session=face, plugin_options=dict(plugin_options or {}), is_root_session=meta.parent_session_id is None
    )
    core.gather_plugin_tools(face)


def new_meta(session_id: str, parent_session_id: str | None, cwd: str | None) -> SessionMeta:
    """Metadata written when a session is created."""
    return SessionMeta(session_id, session_id, time.time(), "", cwd, parent_session_id)


def commit(core: LashCore, face: SessionBase, store: Any) -> Operation[CommitResult]:
    """Gather plugin state, send the commit, adopt its result, and collect blobs when due."""
    state = face._state
    core.gather_plugin_state(face)
    request = state.build_commit()
    result = yield Call(store, "commit", (request,))
    state.apply_commit(request, result)
    if core.auto_gc_due(result):
        yield Call(store, "gc_unreachable")
    return result


def refresh(state: SessionState, store: Any) -> Operation[None]:
    """Load the head another writer moved and re-base uncommitted work on it.

    The head alone is read first: when no other writer moved it, nothing else is read, so a
    refresh before every write costs one small read, not the whole session.
    """
    if state.head_revision is not None:
        head = yield Call(store, "load_head")
        if head is not None and head.revision == state.head_revision:
            return
    read = yield from load_committed(store, state.residency)
    if read is not None and read.head_revision != state.head_revision:
        state.rebase(read)


def compact(core: LashCore, face: SessionBase, store: Any, instructions: str | None) -> Operation[bool]:
    """Run the compactor off the event loop; when it has a result, open a new frame and commit."""
    state = face._state
    result = yield Offload(run_compactor, (core.compactor, state.compaction_context(instructions)))
    if result is None:
        return False
    state.apply_compaction(result)
    yield from commit(core, face, store)
    return True


@attrs.frozen
class PruneReport:
    """What :meth:`Session.prune` removed."""

    tombstoned_node_count: int
    removed_node_count: int
    gc: GcReport


def prune(state: SessionState, store: Any) -> Operation[PruneReport]:
    """Tombstone branches off the active path, vacuum them away and collect blobs."""
    if state.pending_node_ids or state.needs_full_replace or state.leaf_moved:
        raise LashError(f"session {state.session_id!r} has uncommitted changes to its graph; commit before prune()")
    read = yield Call(store, "load_session", (FullGraph(),))
    orphans = read.graph.orphaned_node_ids() if read else []
    hidden = yield Call(store, "tombstone_nodes", (orphans,))
    removed = (yield Call(store, "vacuum")).removed_node_count
    gc = yield Call(store, "gc_unreachable")
    for node_id in orphans:
        state.graph.nodes.pop(node_id, None)
    return PruneReport(hidden, removed, gc)


# --- compactors ---------------------------------------------------------------------------


def check_compaction_result(result: object, compactor: object) -> CompactionResult | None:
    """``result`` if it is a valid compactor answer, else :class:`CompactionError`."""
    name = type(compactor).__name__
    if result is None:
        return None
    if not isinstance(result, CompactionResult):
        raise CompactionError(f"compactor {name} returned {type(result).__name__}, not CompactionResult or None")
    if not isinstance(result.seed_messages, list) or not all(
        isinstance(m, dict) and "role" in m and "content" in m for m in result.seed_messages
    ):
        raise CompactionError(f"compactor {name} returned seed messages that are not {{'role', 'content'}} dicts")
    if not isinstance(result.reason, str) or not result.reason:
        raise CompactionError(f"compactor {name} returned an empty or non-str reason")
    try:
        codec.pack(result.seed_messages)
    except SerializationError as exc:
        raise CompactionError(f"compactor {name} returned seed messages that cannot be stored: {exc}") from exc
    return result


def run_compactor(compactor: Compactor, ctx: CompactionContext) -> CompactionResult | None:
    """Call ``compactor`` and validate its answer; every failure is a :class:`CompactionError`."""
    try:
        result = compactor.compact(ctx)
    except LashError:
        raise
    except Exception as exc:
        raise CompactionError(f"compactor {type(compactor).__name__} failed: {type(exc).__name__}: {exc}") from exc
    return check_compaction_result(result, compactor)
