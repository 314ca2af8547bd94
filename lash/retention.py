"""Retention: data lives exactly as long as ``[retention]`` says, then leaves no trace.

:func:`apply_retention` surveys every session's head, decides what the policy removes and,
unless it is a dry run, removes it under the same rules as commits:

* whole sessions (``max_age``, ``max_sessions``) go through a compare-and-delete
  (:meth:`lash.store.StorageBackend.delete_session` with the revision the policy judged),
  so a session that received a commit meanwhile is kept and reported as skipped;
* nodes (``keep_frames``, ``orphaned_branches = "prune"``) are tombstoned through the core,
  which refuses any node on the head's active path at the moment of writing, then vacuumed;
* blob GC follows, so blobs only a deleted session referenced go too (a shared store keeps
  blobs younger than its grace period).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import attrs

from lash.config import OrphanedBranches, RetentionSection
from lash.errors import HeadRevisionConflict, InvalidGraphError, SessionDeletedError, StoreError
from lash.model import FullGraph, GcReport, SessionRead
from lash.store import StandardSessionStore, StorageBackend

DELETE = "delete"
PRUNE = "prune"


@attrs.frozen
class SessionRetention:
    """What retention did (or, in a dry run, would do) to one session."""

    session_id: str
    action: str
    """``delete`` (the whole session) or ``prune`` (some of its nodes)."""
    reasons: tuple[str, ...]
    """The policy keys that chose it: ``max_age``, ``max_sessions``, ``keep_frames``, ``orphaned_branches``
    (or ``unfinished_delete`` for a session whose earlier deletion was interrupted)."""
    head_revision: int | None
    """The revision the policy judged (None: never committed)."""
    node_count: int
    """Nodes deleted with the session, or tombstoned by the prune."""
    node_bytes: int
    """Stored bytes of those node records."""
    skipped: str | None = None
    """Why nothing was done after all (the session changed meanwhile), else None."""


@attrs.frozen
class RetentionReport:
    """The outcome of :func:`apply_retention`; ``gc`` is None in a dry run."""

    dry_run: bool
    sessions: tuple[SessionRetention, ...] = ()
    gc: GcReport | None = None

    def _done(self, action: str) -> list[SessionRetention]:
        return [s for s in self.sessions if s.action == action and s.skipped is None]

    @property
    def deleted_session_ids(self) -> list[str]:
        return [s.session_id for s in self._done(DELETE)]

    @property
    def sessions_deleted(self) -> int:
        return len(self._done(DELETE))

    @property
    def nodes_tombstoned(self) -> int:
        return sum(s.node_count for s in self._done(PRUNE))

    @property
    def nodes_removed(self) -> int:
        return sum(s.node_count for s in self._done(DELETE)) + self.nodes_tombstoned

    @property
    def bytes_freed(self) -> int:
        """Bytes of node records removed (blob bytes are counted by ``gc`` in blobs)."""
        return sum(s.node_bytes for s in self.sessions if s.skipped is None)

    def totals(self) -> dict[str, int]:
        """The summary numbers, for ``lash retention --json``."""
        return {
            "sessions_deleted": self.sessions_deleted,
            "nodes_tombstoned": self.nodes_tombstoned,
            "nodes_removed": self.nodes_removed,
            "bytes_freed": self.bytes_freed,
        }


@attrs.frozen
class _Surveyed:
    session_id: str
    revision: int | None
    last_active: float | None
    """Last commit (else creation) time; None when unknown (a session being created)."""
    node_count: int
    deleted: bool = False


def apply_retention(
    backend: StorageBackend, policy: RetentionSection, *, dry_run: bool = False, now: float | None = None
) -> RetentionReport:
    """Enforce ``policy`` on every session of ``backend`` (``now``: the clock, for tests)."""
    if not isinstance(backend, StorageBackend):
        raise StoreError(f"retention needs a lash.store.StorageBackend, not {type(backend).__name__}")
    now = time.time() if now is None else now
    survey = _survey(backend)
    doomed = _sessions_to_delete(survey, policy, now)
    details = [_delete(backend, s, reasons, dry_run) for s, reasons in doomed]
    gone = {s.session_id for s, _ in doomed}
    if policy.keep_frames is not None or policy.orphaned_branches is OrphanedBranches.PRUNE:
        for surveyed in survey:
            if surveyed.session_id not in gone:
                detail = _prune(backend, surveyed, policy, dry_run)
                if detail is not None:
                    details.append(detail)
    gc = None if dry_run else backend.gc()
    return RetentionReport(dry_run, tuple(details), gc)


# --- survey and decisions ---------------------------------------------------------------


def _survey(backend: StorageBackend) -> list[_Surveyed]:
    found = []
    for session_id in backend.session_ids():
        store = backend.open_session(session_id, create=False)
        if store is None:  # deleted meanwhile
            continue
        try:
            try:
                loaded = store.load_summary()
            except SessionDeletedError:  # an earlier delete stopped between its two steps
                found.append(_Surveyed(session_id, None, None, 0, deleted=True))
                continue
            if loaded is not None:
                head, summary = loaded
                found.append(_Surveyed(session_id, head.revision, head.committed_at, summary.node_count))
            else:
                meta = store.load_meta()
                found.append(_Surveyed(session_id, None, meta.created_at if meta else None, 0))
        finally:
            store.close()
    return found


def _sessions_to_delete(
    survey: list[_Surveyed], policy: RetentionSection, now: float
) -> list[tuple[_Surveyed, tuple[str, ...]]]:
    reasons: dict[str, list[str]] = {s.session_id: ["unfinished_delete"] for s in survey if s.deleted}
    live = [s for s in survey if not s.deleted]
    if policy.max_age is not None:
        cutoff = now - policy.max_age.seconds
        for s in live:
            if s.last_active is not None and s.last_active < cutoff:
                reasons.setdefault(s.session_id, []).append("max_age")
    if policy.max_sessions is not None:
        # Newest first; a session of unknown age (being created right now) counts as newest.
        ranked = sorted(live, key=lambda s: -(s.last_active if s.last_active is not None else float("inf")))
        for s in ranked[policy.max_sessions :]:
            reasons.setdefault(s.session_id, []).append("max_sessions")
    return [(s, tuple(reasons[s.session_id])) for s in survey if s.session_id in reasons]


# --- actions ---------------------------------------------------------------------------


def _delete(backend: StorageBackend, surveyed: _Surveyed, reasons: tuple[str, ...], dry_run: bool) -> SessionRetention:
    node_bytes = _stored_node_bytes(backend, surveyed.session_id)
    detail = SessionRetention(surveyed.session_id, DELETE, reasons, surveyed.revision, surveyed.node_count, node_bytes)
    if dry_run:
        return detail
    expected = "unfinished_delete" not in reasons
    try:
        if expected:
            existed = backend.delete_session(surveyed.session_id, expected_head_revision=surveyed.revision)
        else:
            existed = backend.delete_session(surveyed.session_id)
    except HeadRevisionConflict as exc:
        return attrs.evolve(detail, skipped=f"committed meanwhile (revision {exc.actual}); kept")
    return detail if existed else attrs.evolve(detail, skipped="already deleted by someone else")


def _prune(
    backend: StorageBackend, surveyed: _Surveyed, policy: RetentionSection, dry_run: bool
) -> SessionRetention | None:
    store = backend.open_session(surveyed.session_id, create=False)
    if store is None:
        return None
    try:
        try:
            read = store.load_session(FullGraph())
        except SessionDeletedError:
            return None
        if read is None:
            return None
        doomed, reasons = _nodes_to_prune(read, policy)
        if not doomed:
            return None
        detail = SessionRetention(
            surveyed.session_id, PRUNE, reasons, read.head_revision, len(doomed), _node_bytes(store, doomed)
        )
        if dry_run:
            return detail
        try:
            hidden = store.tombstone_nodes(doomed)
        except InvalidGraphError:
            return attrs.evolve(detail, skipped="its head moved onto a node being pruned meanwhile; kept")
        except SessionDeletedError:
            return attrs.evolve(detail, skipped="deleted meanwhile")
        store.vacuum()
        return attrs.evolve(detail, node_count=hidden)
    finally:
        store.close()


def _nodes_to_prune(read: SessionRead, policy: RetentionSection) -> tuple[list[str], tuple[str, ...]]:
    """Off-path node ids ``policy`` removes from ``read``, and the keys that chose them."""
    graph = read.graph
    on_path = {n.node_id for n in graph.active_path()}
    doomed: dict[str, None] = {}
    reasons = []
    if policy.keep_frames is not None and len(read.agent_frames) > policy.keep_frames:
        old = {f.frame_id for f in read.agent_frames[: -policy.keep_frames]}
        frame_of = _frame_of_nodes(read)
        chosen = [nid for nid in graph.nodes if frame_of[nid] in old and nid not in on_path]
        if chosen:
            reasons.append("keep_frames")
            doomed.update(dict.fromkeys(chosen))
    if policy.orphaned_branches is OrphanedBranches.PRUNE:
        chosen = [nid for nid in graph.orphaned_node_ids() if nid not in on_path]
        if chosen:
            reasons.append("orphaned_branches")
            doomed.update(dict.fromkeys(chosen))
    return list(doomed), tuple(reasons)


def _frame_of_nodes(read: SessionRead) -> dict[str, str]:
    """Frame id of every node: the frame whose start node is its nearest ancestor (or itself).

    Nodes above every frame start belong to the first frame. Nodes are visited parents
    first (the graph keeps insertion order), so each looks up its parent once.
    """
    starts = {f.start_node_id: f.frame_id for f in read.agent_frames if f.start_node_id is not None}
    first = read.agent_frames[0].frame_id if read.agent_frames else ""
    frame_of: dict[str, str] = {}
    for node in read.graph.nodes.values():
        frame_of[node.node_id] = starts.get(node.node_id) or frame_of.get(node.parent_id or "", first)
    return frame_of


def _stored_node_bytes(backend: StorageBackend, session_id: str) -> int:
    store = backend.open_session(session_id, create=False)
    if store is None:
        return 0
    try:
        return _node_bytes(store, None)
    finally:
        store.close()


def _node_bytes(store: StandardSessionStore, node_ids: Iterable[str] | None) -> int:
    """Stored size of node records (all visible ones when ``node_ids`` is None), read raw: no decoding."""
    with store.storage.transaction(write=False) as txn:
        if node_ids is None:
            return sum(map(len, txn.read_all_nodes()))
        return sum(map(len, txn.read_nodes(list(node_ids)).values()))
