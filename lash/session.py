"""The runtime session: what an agent loop calls every turn.

The logic lives in :class:`SessionState`, which does no I/O: it records appends, usage and
snapshots, *builds* the next :class:`~lash.model.Commit` and *applies* what the store
answered. :class:`Session` is the synchronous face that adds the store calls and plugin
hooks around it; ``lash.aio`` is the asynchronous face over the same state (the sans-I/O
pattern of h11 and of psycopg's shared generators). No commit, compaction or refresh rule
is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from lash import codec
from lash.compaction import CompactionContext, CompactionResult, Compactor
from lash.errors import CompactionError, InvalidGraphError, LashError, SerializationError, SessionClosedError
from lash.graph import SessionGraph, new_node_id
from lash.model import (
    ActivePath,
    AgentFrame,
    Append,
    Commit,
    CommitResult,
    FullGraph,
    GcReport,
    HydratedCheckpoint,
    LedgerEntry,
    NodeKind,
    PluginSnapshot,
    ReadScope,
    ReplaceFull,
    SessionConfig,
    SessionMeta,
    SessionRead,
    TokenUsage,
    ToolState,
    TurnState,
    Unchanged,
    merge_ledger,
)

if TYPE_CHECKING:
    from lash.runtime import Lash
    from lash.store import SessionStore

Residency = Literal["keep_all", "active_path"]
RESIDENCIES: tuple[str, ...] = ("keep_all", "active_path")


# --- value objects -----------------------------------------------------------------------


@attrs.frozen
class UsageReport:
    """Token usage totals: per ``(source, model)`` entry, per source, per model, overall."""

    entries: tuple[LedgerEntry, ...]

    @property
    def by_source(self) -> dict[str, TokenUsage]:
        return _totals(self.entries, lambda e: e.source)

    @property
    def by_model(self) -> dict[str, TokenUsage]:
        return _totals(self.entries, lambda e: e.model)

    @property
    def total(self) -> TokenUsage:
        return sum((e.usage for e in self.entries), TokenUsage())

    def __add__(self, other: UsageReport) -> UsageReport:
        return UsageReport(merge_ledger((*self.entries, *other.entries)))


def _totals(entries: Iterable[LedgerEntry], key: Any) -> dict[str, TokenUsage]:
    out: dict[str, TokenUsage] = {}
    for entry in entries:
        out[key(entry)] = out.get(key(entry), TokenUsage()) + entry.usage
    return out


@attrs.frozen
class PruneReport:
    """What :meth:`Session.prune` removed."""

    tombstoned_node_count: int
    removed_node_count: int
    gc: GcReport


class ToolRegistry:
    """The tools offered to the model. ``generation`` increases only when the set changes.

    Tools registered by the application (:meth:`register`) and those plugins contribute
    through ``lash_session_tools`` are combined; a tool is a dict with a ``"name"``.
    """

    def __init__(self, state: ToolState | None = None) -> None:
        self._own: dict[str, dict[str, Any]] = {}
        self._from_plugins: dict[str, dict[str, Any]] = {}
        self._tools: tuple[dict[str, Any], ...] = ()
        self.generation = 0
        if state is not None:
            self._load(state)

    def _load(self, state: ToolState) -> None:
        self._own = {t["name"]: t for t in state.tools}
        self._from_plugins = {}
        self._tools = tuple(state.tools)
        self.generation = state.generation

    def __iter__(self) -> Any:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return any(t["name"] == name for t in self._tools)

    @property
    def tools(self) -> tuple[dict[str, Any], ...]:
        return self._tools

    def names(self) -> list[str]:
        return [t["name"] for t in self._tools]

    def register(self, spec: Mapping[str, Any]) -> None:
        """Offer a tool (replaces a tool of the same name)."""
        spec = _tool_spec(spec)
        self._own[spec["name"]] = spec
        self._refresh()

    def unregister(self, name: str) -> None:
        """Stop offering a tool (no error if absent)."""
        self._own.pop(name, None)
        self._refresh()

    def replace(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Replace every application tool."""
        self._own = {s["name"]: s for s in map(_tool_spec, specs)}
        self._refresh()

    def set_plugin_tools(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """The tools plugins contribute now (called before each commit)."""
        self._from_plugins = {s["name"]: s for s in map(_tool_spec, specs)}
        self._refresh()

    def _refresh(self) -> None:
        combined = {**self._from_plugins, **self._own}
        tools = tuple(combined[name] for name in sorted(combined))
        if tools != self._tools:
            self._tools = tools
            self.generation += 1

    def state(self) -> ToolState:
        return ToolState(self.generation, self._tools)


def _tool_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise LashError(f"a tool spec must be a dict with a non-empty 'name', got {spec!r:.80}")
    return dict(spec)


# --- the sans-I/O session logic ---------------------------------------------------------


class SessionState:
    """Everything a session knows, and every rule for changing it. Does no I/O."""

    def __init__(self, session_id: str, *, residency: Residency = "keep_all") -> None:
        if residency not in RESIDENCIES:
            raise ValueError(f"residency must be one of {RESIDENCIES}, not {residency!r}")
        self.session_id = session_id
        self.residency: Residency = residency
        self.head_revision: int | None = None
        self.graph = SessionGraph()
        self.config = SessionConfig()
        self.turn_state = TurnState()
        self.tools = ToolRegistry()
        self.protocol_turn_options: dict[str, Any] = {}
        initial = AgentFrame(new_node_id(), "initial")
        self.frames: list[AgentFrame] = [initial]
        self.current_frame_id = initial.frame_id
        self.execution_state: bytes | None = None
        self.plugin_snapshot: PluginSnapshot | None = None
        self._plugin_fingerprint: bytes | None = None
        self.ledger: tuple[LedgerEntry, ...] = ()
        self.pending_usage: list[LedgerEntry] = []
        self.pending_node_ids: list[str] = []
        self.needs_full_replace = False
        self._committed_tool_generation: int | None = None
        self._committed_execution_state: bytes | None = None

    # -- reads ----------------------------------------------------------------------------

    @property
    def read_scope(self) -> ReadScope:
        return ActivePath() if self.residency == "active_path" else FullGraph()

    @property
    def current_frame(self) -> AgentFrame:
        return next(f for f in self.frames if f.frame_id == self.current_frame_id)

    @property
    def dirty(self) -> bool:
        """True when something would be committed beyond a turn-state bump."""
        return bool(self.pending_node_ids or self.pending_usage or self.needs_full_replace)

    def messages(self) -> list[dict[str, Any]]:
        path = self.graph.active_path()
        ids = [n.node_id for n in path]
        start = 0
        for frame in reversed(self._frames_up_to_current()):
            if frame.start_node_id is None:
                break
            if frame.start_node_id in ids:
                start = ids.index(frame.start_node_id)
                break
        return [n.body for n in path[start:] if n.kind == NodeKind.MESSAGE]

    def _frames_up_to_current(self) -> list[AgentFrame]:
        ids = [f.frame_id for f in self.frames]
        return self.frames[: ids.index(self.current_frame_id) + 1]

    def usage_report(self) -> UsageReport:
        return UsageReport(merge_ledger((*self.ledger, *self.pending_usage)))

    # -- recording ------------------------------------------------------------------------

    def append(self, kind: str, body: Any, parent_id: str | None = None) -> str:
        try:
            codec.pack(body)
        except SerializationError as exc:
            raise SerializationError(f"{kind} node body cannot be stored: {exc}") from exc
        node_id = self.graph.append(kind, body, parent_id if parent_id is not None else self.graph.leaf_node_id)
        self.pending_node_ids.append(node_id)
        return node_id

    def record_usage(self, source: str, model: str, usage: TokenUsage) -> None:
        if not isinstance(usage, TokenUsage):
            raise TypeError(f"usage must be a lash.TokenUsage, not {type(usage).__name__}")
        self.pending_usage.append(LedgerEntry(source, model, usage))

    def checkout(self, node_id: str) -> None:
        if node_id not in self.graph:
            raise InvalidGraphError(f"node {node_id!r} is not in session {self.session_id!r}")
        self.graph.leaf_node_id = node_id

    def reset(self, graph: SessionGraph | None = None) -> None:
        self.graph = graph if graph is not None else SessionGraph()
        self.pending_node_ids = []
        self.needs_full_replace = True

    def set_protocol_turn_options(self, options: Mapping[str, Any]) -> None:
        self.protocol_turn_options.update(options)
        self.frames = [
            attrs.evolve(f, protocol_turn_options={**f.protocol_turn_options, **options})
            if f.frame_id == self.current_frame_id
            else f
            for f in self.frames
        ]

    def set_plugin_entries(self, entries: dict[str, Any]) -> None:
        """Plugin snapshot entries gathered before a commit; bumps the revision on change."""
        fingerprint = codec.pack(entries)
        if self.plugin_snapshot is None and not entries:
            return
        if fingerprint != self._plugin_fingerprint:
            revision = 0 if self.plugin_snapshot is None else self.plugin_snapshot.revision
            self.plugin_snapshot = PluginSnapshot(revision + 1, entries)
            self._plugin_fingerprint = fingerprint

    # -- load, commit, refresh ------------------------------------------------------------

    def apply_read(self, read: SessionRead) -> None:
        """Adopt a freshly loaded session (open/resume)."""
        self.head_revision = read.head_revision
        self.graph = read.graph
        self.config = read.config
        self.turn_state = read.checkpoint.turn_state
        self.protocol_turn_options = dict(read.checkpoint.turn_state.mode_turn_options)
        if read.agent_frames:
            self.frames = list(read.agent_frames)
            self.current_frame_id = read.current_agent_frame_id or self.frames[-1].frame_id
        self.tools = ToolRegistry(read.checkpoint.tool_state)
        self._committed_tool_generation = self.tools.generation if read.checkpoint.tool_state else None
        self.plugin_snapshot = read.checkpoint.plugin_snapshot
        self._plugin_fingerprint = codec.pack(self.plugin_snapshot.entries) if self.plugin_snapshot else None
        self.execution_state = self._committed_execution_state = read.checkpoint.execution_state
        self.ledger = read.token_ledger
        self.pending_usage = []
        self.pending_node_ids = []
        self.needs_full_replace = self.graph.heal_orphaned_leaf()

    def build_commit(self) -> Commit:
        """The commit that would persist everything recorded since the last one."""
        if self.needs_full_replace:
            delta: Unchanged | Append | ReplaceFull = ReplaceFull(self.graph)
        elif self.pending_node_ids:
            delta = Append(tuple(self.graph.nodes[n] for n in self.pending_node_ids), self.graph.leaf_node_id)
        else:
            delta = Unchanged(self.graph.leaf_node_id)
        usage = self.usage_report()
        last_prompt = sum((e.usage for e in self.pending_usage), TokenUsage()) if self.pending_usage else None
        turn_state = TurnState(
            turn_index=self.turn_state.turn_index + 1,
            token_usage=usage.total,
            last_prompt_usage=last_prompt or self.turn_state.last_prompt_usage,
            mode_turn_options=dict(self.protocol_turn_options),
        )
        return Commit(
            session_id=self.session_id,
            expected_head_revision=self.head_revision,
            config=self.config,
            graph=delta,
            checkpoint=HydratedCheckpoint(
                turn_state=turn_state,
                tool_state=self.tools.state() if (self.tools.generation or len(self.tools)) else None,
                plugin_snapshot=self.plugin_snapshot,
                execution_state=self.execution_state,
            ),
            usage_deltas=tuple(self.pending_usage),
            agent_frames=tuple(self.frames),
            current_agent_frame_id=self.current_frame_id,
        )

    def apply_commit(self, commit: Commit, result: CommitResult) -> None:
        """Adopt what a successful commit stored."""
        self.head_revision = result.head_revision
        self.turn_state = commit.checkpoint.turn_state
        self.ledger = merge_ledger((*self.ledger, *commit.usage_deltas))
        self.pending_usage = self.pending_usage[len(commit.usage_deltas) :]
        sent = len(commit.graph.nodes) if isinstance(commit.graph, Append) else len(self.pending_node_ids)
        self.pending_node_ids = self.pending_node_ids[sent:]
        self.needs_full_replace = False
        self._committed_tool_generation = result.manifest.tool_state_generation
        self._committed_execution_state = self.execution_state
        if self.plugin_snapshot is not None:  # the store has the entries; keep only the fingerprint
            self.plugin_snapshot = attrs.evolve(self.plugin_snapshot, entries={})

    def rebase(self, read: SessionRead) -> None:
        """Adopt another writer's head while keeping everything not yet committed.

        Uncommitted nodes that hung under the old committed leaf are moved under the new
        head's leaf; uncommitted usage, tool changes, execution state and frames survive,
        so the next commit loses neither side's work.
        """
        old_leaf_committed = self._last_committed_leaf()
        pending = [self.graph.nodes[n] for n in self.pending_node_ids if n in self.graph.nodes]
        pending_ids = {n.node_id for n in pending}
        leaf_was_pending = self.graph.leaf_node_id in pending_ids
        local_tools = self.tools if self.tools.generation != self._committed_tool_generation else None
        local_exec = self.execution_state if self.execution_state != self._committed_execution_state else None
        local_frames = [f for f in self.frames if f.frame_id not in {g.frame_id for g in read.agent_frames}]
        local_current = self.current_frame_id
        usage = self.pending_usage
        full = self.needs_full_replace

        self.apply_read(read)
        graph = self.graph
        for node in pending:
            parent = node.parent_id
            if (parent not in graph.nodes and parent not in pending_ids) or parent == old_leaf_committed:
                parent = read.graph.leaf_node_id
            graph.add(attrs.evolve(node, parent_id=parent))
        if leaf_was_pending:
            graph.leaf_node_id = pending[-1].node_id if pending else graph.leaf_node_id
        self.pending_node_ids = [n.node_id for n in pending]
        self.pending_usage = usage
        self.needs_full_replace = self.needs_full_replace or full
        if local_tools is not None:
            remote_generation = self.tools.generation
            self.tools = local_tools
            self.tools.generation = max(local_tools.generation, remote_generation + 1)
        if local_exec is not None:
            self.execution_state = local_exec
        if local_frames:
            self.frames.extend(local_frames)
            self.current_frame_id = local_current

    def _last_committed_leaf(self) -> str | None:
        pending = set(self.pending_node_ids)
        for node in reversed(self.graph.active_path()):
            if node.node_id not in pending:
                return node.node_id
        return None

    # -- compaction -----------------------------------------------------------------------

    def compaction_context(self, instructions: str | None) -> CompactionContext:
        return CompactionContext(
            session_id=self.session_id,
            messages=tuple(dict(m) if isinstance(m, dict) else m for m in self.messages()),
            instructions=instructions,
            usage=self.usage_report().entries,
            config=self.config,
        )

    def apply_compaction(self, result: CompactionResult) -> AgentFrame:
        """Open a new agent frame seeded with ``result``; the old history stays in the graph."""
        frame_id = new_node_id()
        marker = self.append(NodeKind.FRAME, {"frame_id": frame_id, "reason": result.reason})
        seeds = tuple(self.append(NodeKind.MESSAGE, message) for message in result.seed_messages)
        frame = AgentFrame(frame_id, result.reason, seeds, marker, dict(self.protocol_turn_options))
        self.frames.append(frame)
        self.current_frame_id = frame_id
        return frame


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


# --- the synchronous face -----------------------------------------------------------------


class Session:
    """A live agent session bound to a store. Create it with :meth:`lash.Lash.session`."""

    def __init__(self, lash: Lash, store: SessionStore, state: SessionState) -> None:
        self._lash = lash
        self._store = store
        self._state = state
        self._closed = False

    def __repr__(self) -> str:
        return f"<Session {self.session_id!r} revision={self.head_revision}>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ----------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._state.session_id

    @property
    def head_revision(self) -> int | None:
        return self._state.head_revision

    @property
    def graph(self) -> SessionGraph:
        return self._state.graph

    @property
    def config(self) -> SessionConfig:
        return self._state.config

    @config.setter
    def config(self, value: SessionConfig) -> None:
        if not isinstance(value, SessionConfig):
            raise TypeError(f"config must be a lash.SessionConfig, not {type(value).__name__}")
        self._state.config = value

    @property
    def frames(self) -> tuple[AgentFrame, ...]:
        return tuple(self._state.frames)

    @property
    def current_frame(self) -> AgentFrame:
        return self._state.current_frame

    @property
    def tools(self) -> ToolRegistry:
        return self._state.tools

    @property
    def turn_state(self) -> TurnState:
        return self._state.turn_state

    @property
    def execution_state(self) -> bytes | None:
        return self._state.execution_state

    @property
    def protocol_turn_options(self) -> dict[str, Any]:
        return dict(self._state.protocol_turn_options)

    @property
    def plugin_snapshot(self) -> PluginSnapshot | None:
        """The last plugin snapshot (entries are dropped once committed)."""
        return self._state.plugin_snapshot

    @property
    def dirty(self) -> bool:
        """Whether nodes or usage are waiting for :meth:`commit`."""
        return self._state.dirty

    @property
    def store(self) -> SessionStore:
        """The underlying store, for low-level use."""
        return self._store

    @property
    def lash(self) -> Lash:
        """The handle this session belongs to."""
        return self._lash

    def _check_open(self) -> SessionState:
        if self._closed:
            raise SessionClosedError(f"session {self.session_id!r} is closed")
        return self._state

    # -- recording ------------------------------------------------------------------------

    def append_message(self, role: str, content: Any, **extra: Any) -> str:
        """Append a message node ``{"role", "content", **extra}``; returns its id."""
        return self._check_open().append(NodeKind.MESSAGE, {"role": role, "content": content, **extra})

    def append_event(self, kind: str, body: Any) -> str:
        """Append an event node ``{"type": kind, "body": body}``; returns its id."""
        return self._check_open().append(NodeKind.EVENT, {"type": kind, "body": body})

    def append_plugin(self, plugin_type: str, body: Any) -> str:
        """Append a ``plugin:<plugin_type>`` node; returns its id."""
        return self._check_open().append(f"plugin:{plugin_type}", body)

    def messages(self) -> list[dict[str, Any]]:
        """Message bodies the model sees: the current frame's seed plus what follows."""
        return self._state.messages()

    def record_usage(self, source: str, model: str, usage: TokenUsage) -> None:
        """Add usage; it is merged into the ledger by ``(source, model)`` at the next commit."""
        self._check_open().record_usage(source, model, usage)

    def usage_report(self, *, include_children: bool = False) -> UsageReport:
        """Totals of committed and pending usage; optionally with every child session's."""
        report = self._state.usage_report()
        if include_children:
            report = report + self._lash.usage_of_children(self.session_id)
        return report

    def set_execution_state(self, data: bytes | None) -> None:
        """Opaque runtime state persisted with each commit (None clears it)."""
        if data is not None and not isinstance(data, bytes | bytearray):
            raise TypeError(f"execution state must be bytes or None, not {type(data).__name__}")
        self._check_open().execution_state = None if data is None else bytes(data)

    def set_protocol_turn_options(self, **options: Any) -> None:
        """Protocol turn options (set by materialization plugins); recorded on the frame."""
        self._check_open().set_protocol_turn_options(options)

    def checkout(self, node_id: str) -> None:
        """Continue from an earlier node: the next append starts a new branch there."""
        state = self._check_open()
        if node_id not in state.graph:  # active-path residency: fetch that path first
            read = self._store.load_session(ActivePath(node_id))
            if read is not None:
                for node in read.graph.nodes.values():
                    if node.node_id not in state.graph:
                        state.graph.add(node)
        state.checkout(node_id)

    def reset(self, graph: SessionGraph | None = None) -> None:
        """Replace the whole graph; the next commit sends ``ReplaceFull``."""
        self._check_open().reset(graph)

    # -- storage --------------------------------------------------------------------------

    def commit(self) -> CommitResult:
        """Persist everything recorded since the last commit, atomically.

        Raises :class:`~lash.HeadRevisionConflict` when another writer committed first;
        call :meth:`refresh` and commit again.
        """
        state = self._check_open()
        self._lash._gather_plugin_state(self)
        commit = state.build_commit()
        result = self._store.commit(commit)
        state.apply_commit(commit, result)
        self._lash._after_commit(self, result)
        return result

    def refresh(self) -> None:
        """Load the head another writer moved and re-base uncommitted work on it."""
        state = self._check_open()
        read = self._store.load_session(state.read_scope)
        if read is not None and read.head_revision != state.head_revision:
            state.rebase(read)

    def compact(self, instructions: str | None = None) -> bool:
        """Run the configured compactor; when it has a result, open a new frame and commit.

        Returns False when the compactor found nothing to do.
        """
        state = self._check_open()
        result = run_compactor(self._lash.compactor, state.compaction_context(instructions))
        if result is None:
            return False
        state.apply_compaction(result)
        self.commit()
        return True

    def spawn_child(self, session_id: str, plugin_options: Mapping[str, Any] | None = None) -> Session:
        """A child session (a sub-agent) whose parent is this one."""
        self._check_open()
        return self._lash._open(
            session_id,
            residency=self._state.residency,
            plugin_options=plugin_options,
            parent_session_id=self.session_id,
        )

    def prune(self) -> PruneReport:
        """Tombstone branches off the active path, vacuum them away and collect blobs."""
        state = self._check_open()
        if state.pending_node_ids or state.needs_full_replace:
            raise LashError(f"session {self.session_id!r} has uncommitted nodes; commit before prune()")
        read = self._store.load_session(FullGraph())
        orphans = read.graph.orphaned_node_ids() if read else []
        hidden = self._store.tombstone_nodes(orphans)
        removed = self._store.vacuum().removed_node_count
        gc = self._store.gc_unreachable()
        for node_id in orphans:
            state.graph.nodes.pop(node_id, None)
        return PruneReport(hidden, removed, gc)

    def meta(self) -> SessionMeta | None:
        """The stored metadata."""
        return self._store.load_meta()

    def close(self) -> None:
        """Close the store; uncommitted changes are discarded."""
        if not self._closed:
            self._closed = True
            self._store.close()
            self._lash._forget(self)

    @property
    def closed(self) -> bool:
        return self._closed


def new_meta(session_id: str, parent_session_id: str | None, cwd: str | None) -> SessionMeta:
    """Metadata written when a session is created."""
    return SessionMeta(session_id, session_id, time.time(), "", cwd, parent_session_id)
