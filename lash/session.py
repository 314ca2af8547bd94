"""The runtime session: what an agent loop calls every turn.

The logic lives in :class:`SessionState`, which does no I/O: it records appends, usage and
snapshots, *builds* the next :class:`~lash.model.Commit` and *applies* what the store
answered. The multi-step operations around it (open, commit, compact, refresh, prune) are
written once, as generators, in :mod:`lash.operations`. :class:`SessionBase` is what both
faces share (state and recording); :class:`Session` is the synchronous face, which drives
the operations with plain calls, and ``lash.aio.Session`` the asynchronous one, which
awaits them. No commit, compaction or refresh rule is written twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from lash import codec, operations
from lash.compaction import CompactionContext, CompactionResult
from lash.errors import InvalidGraphError, LashError, SerializationError, SessionClosedError
from lash.graph import SessionGraph, new_node_id
from lash.model import (
    ActivePath,
    AgentFrame,
    Append,
    Commit,
    CommitResult,
    FullGraph,
    HydratedCheckpoint,
    LedgerEntry,
    Node,
    NodeKind,
    PackedTools,
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
from lash.operations import PruneReport

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


class ToolRegistry:
    """The tools offered to the model. ``generation`` increases only when the set changes.

    Tools registered by the application (:meth:`register`) and those plugins contribute
    through ``lash_session_tools`` are combined (the application's win a name clash); a
    tool is a msgpack-able dict with a ``"name"``. A tool passing from a plugin to the
    application (or back) also bumps the generation, because the stored state records who
    offers each tool.

    Specs are held packed (:class:`~lash.model.PackedTools`: bytes, which the cyclic GC
    never walks), and :attr:`tools` and iteration decode fresh copies: changing a dict
    they returned changes nothing here and nothing stored; :meth:`register` it to change a tool.
    """

    def __init__(self, state: ToolState | None = None) -> None:
        self._own: dict[str, bytes] = {}
        self._from_plugins: dict[str, bytes] = {}
        self._state = ToolState(0)
        self._names: tuple[str, ...] = ()
        self.load(state)

    def load(self, state: ToolState | None) -> None:
        """Adopt a stored tool state (None: no tools, generation 0)."""
        state = state or ToolState(0)
        names = tuple(spec["name"] for spec in state.tools)
        plugin_names = set(state.plugin_tool_names)
        specs = dict(zip(names, state.packed_tools.specs, strict=True))
        self._own = {name: spec for name, spec in specs.items() if name not in plugin_names}
        self._from_plugins = {name: spec for name, spec in specs.items() if name in plugin_names}
        self._names = names
        self._state = ToolState(state.generation, state.packed_tools, sorted(plugin_names & set(names)))

    @property
    def generation(self) -> int:
        return self._state.generation

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    @property
    def tools(self) -> tuple[dict[str, Any], ...]:
        """Fresh copies of the specs, sorted by name."""
        return self._state.tools

    def names(self) -> list[str]:
        return list(self._names)

    def register(self, spec: Mapping[str, Any]) -> None:
        """Offer a tool (replaces a tool of the same name)."""
        self._own.update(_packed_specs([spec]))
        self._refresh()

    def unregister(self, name: str) -> None:
        """Stop offering a tool (no error if absent)."""
        self._own.pop(name, None)
        self._refresh()

    def replace(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """Replace every application tool."""
        self._own = _packed_specs(specs)
        self._refresh()

    def set_plugin_tools(self, specs: Iterable[Mapping[str, Any]]) -> None:
        """The tools plugins contribute now (called on open and before each commit)."""
        from_plugins = _packed_specs(specs)
        if from_plugins != self._from_plugins:  # every commit asks; compares bytes, decodes nothing
            self._from_plugins = from_plugins
            self._refresh()

    def _refresh(self) -> None:
        combined = {**self._from_plugins, **self._own}
        names = tuple(sorted(combined))
        tools = PackedTools(tuple(combined[name] for name in names))
        plugin_names = tuple(sorted(set(self._from_plugins) - set(self._own)))
        if (tools, plugin_names) != (self._state.packed_tools, self._state.plugin_tool_names):
            self._state = ToolState(self._state.generation + 1, tools, plugin_names)
            self._names = names

    def state(self) -> ToolState:
        """The current tool state (immutable: the same record until the tools change)."""
        return self._state


def _packed_specs(specs: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """Each spec by name, msgpack-packed: a detached copy that reads back as it will after a resume."""
    packed = {}
    for spec in specs:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise LashError(f"a tool spec must be a dict with a non-empty 'name', got {spec!r:.80}")
        try:
            packed[spec["name"]] = codec.pack(dict(spec))
        except SerializationError as exc:
            raise SerializationError(f"tool {spec['name']!r} cannot be stored: {exc}") from exc
    return packed


# --- the sans-I/O session logic ---------------------------------------------------------


@attrs.frozen
class _Baseline:
    """What the store holds as far as this session knows: the last commit or read.

    :meth:`SessionState.rebase` compares against it to tell local, uncommitted changes
    from what another writer may have replaced.
    """

    leaf_node_id: str | None = None
    tool_generation: int | None = None
    execution_state: bytes | None = None
    config: SessionConfig = attrs.field(factory=SessionConfig)
    protocol_turn_options: dict[str, Any] = attrs.field(factory=dict)
    frame_ids: frozenset[str] = frozenset()


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
        self._plugin_entries: dict[str, bytes] | None = None
        """The packed plugin values ``plugin_snapshot`` was made from: an unchanged snapshot compares equal."""
        self.ledger: tuple[LedgerEntry, ...] = ()
        self.pending_usage: list[LedgerEntry] = []
        self.pending_node_ids: list[str] = []
        self.needs_full_replace = False
        self._reset_pending = False
        self._base = _Baseline()

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

    @property
    def leaf_moved(self) -> bool:
        """True when the leaf is not where the store has it (appends, checkout, reset)."""
        return self.graph.leaf_node_id != self._base.leaf_node_id

    def messages(self) -> list[dict[str, Any]]:
        path = self.graph.active_path()
        _, start = self._frame_on_path(path)
        return [n.body for n in path[start:] if n.kind == NodeKind.MESSAGE]

    def _frame_on_path(self, path: list[Node]) -> tuple[AgentFrame, int]:
        """The newest frame whose start node is on ``path``, and that node's index (else the first frame, 0)."""
        index = {n.node_id: i for i, n in enumerate(path)}
        for frame in reversed(self.frames):
            if frame.start_node_id in index:
                return frame, index[frame.start_node_id]
        return self.frames[0], 0

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
        """Move the leaf to ``node_id`` and make the frame it belongs to current.

        With ``active_path`` residency, nodes off the new path are dropped from memory
        when nothing is waiting to be committed.
        """
        if node_id not in self.graph:
            raise InvalidGraphError(f"node {node_id!r} is not in session {self.session_id!r}")
        self.graph.leaf_node_id = node_id
        self.current_frame_id = self._frame_on_path(self.graph.active_path())[0].frame_id
        if self.residency == "active_path" and not (self.pending_node_ids or self.needs_full_replace):
            self.graph = self.graph.fork_current_path()

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Adopt committed nodes loaded from the store (parents first)."""
        for node in nodes:
            if node.node_id not in self.graph:
                self.graph.add(node)

    def reset(self, graph: SessionGraph | None = None) -> None:
        self.graph = graph if graph is not None else SessionGraph()
        self.pending_node_ids = []
        self.needs_full_replace = True
        self._reset_pending = True

    def set_protocol_turn_options(self, options: Mapping[str, Any]) -> None:
        """Options of the session and of the current frame (later frames inherit them)."""
        try:
            codec.pack(dict(options))
        except SerializationError as exc:
            raise SerializationError(f"protocol turn options cannot be stored: {exc}") from exc
        self.protocol_turn_options.update(options)
        self.frames = [
            attrs.evolve(f, protocol_turn_options={**f.protocol_turn_options, **options})
            if f.frame_id == self.current_frame_id
            else f
            for f in self.frames
        ]

    def set_plugin_entries(self, packed: Mapping[str, bytes]) -> None:
        """Plugin snapshot values gathered before a commit; bumps the revision on change.

        ``packed`` maps plugin name → its value already msgpack-encoded (the caller encodes
        each value once, to check it). The snapshot keeps a decoded copy, so a plugin
        mutating its state afterwards changes neither it nor what is committed.
        """
        if self.plugin_snapshot is None and not packed:
            return
        if packed != self._plugin_entries:  # compares the bytes; no second encoding of every value
            revision = 0 if self.plugin_snapshot is None else self.plugin_snapshot.revision
            entries = {name: codec.unpack(data, f"snapshot of plugin {name!r}") for name, data in packed.items()}
            self.plugin_snapshot = PluginSnapshot(revision + 1, entries)
            self._plugin_entries = dict(packed)

    # -- load, commit, refresh ------------------------------------------------------------

    def apply_read(self, read: SessionRead) -> None:
        """Adopt a freshly loaded session (open/resume); heals an orphaned leaf."""
        self.head_revision = read.head_revision
        self.graph = read.graph
        self.config = read.config
        self.turn_state = read.checkpoint.turn_state
        self.protocol_turn_options = dict(read.checkpoint.turn_state.mode_turn_options)
        if read.agent_frames:
            self.frames = list(read.agent_frames)
            self.current_frame_id = read.current_agent_frame_id or self.frames[-1].frame_id
        self.tools.load(read.checkpoint.tool_state)
        self.plugin_snapshot = read.checkpoint.plugin_snapshot
        self._plugin_entries = (
            {name: codec.pack(value) for name, value in self.plugin_snapshot.entries.items()}
            if self.plugin_snapshot
            else None
        )
        self.execution_state = read.checkpoint.execution_state
        self.ledger = read.token_ledger
        self.pending_usage = []
        self.pending_node_ids = []
        self._reset_pending = False
        self._base = _Baseline(
            leaf_node_id=read.graph.leaf_node_id,
            tool_generation=read.checkpoint.tool_state.generation if read.checkpoint.tool_state else None,
            execution_state=self.execution_state,
            config=self.config,
            protocol_turn_options=dict(self.protocol_turn_options),
            frame_ids=frozenset(f.frame_id for f in read.agent_frames),
        )
        self.needs_full_replace = self.graph.heal_orphaned_leaf()

    def build_commit(self) -> Commit:
        """The commit that would persist everything recorded since the last one.

        It is a snapshot: recording more before :meth:`apply_commit` changes neither it nor
        what :meth:`apply_commit` treats as sent.
        """
        if self.needs_full_replace:
            snapshot = SessionGraph.from_nodes(self.graph.nodes.values(), self.graph.leaf_node_id)
            delta: Unchanged | Append | ReplaceFull = ReplaceFull(snapshot)
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
        delta = commit.graph
        if isinstance(delta, ReplaceFull):
            sent: Collection[str] = delta.graph.nodes.keys()
            leaf = delta.graph.leaf_node_id
        else:
            sent = {n.node_id for n in delta.nodes} if isinstance(delta, Append) else ()
            leaf = delta.leaf_node_id
        self.head_revision = result.head_revision
        self.turn_state = commit.checkpoint.turn_state
        self.ledger = merge_ledger((*self.ledger, *commit.usage_deltas))
        self.pending_usage = self.pending_usage[len(commit.usage_deltas) :]
        self.pending_node_ids = [n for n in self.pending_node_ids if n not in sent]
        self.needs_full_replace = self._reset_pending = False
        self._base = _Baseline(
            leaf_node_id=leaf,
            tool_generation=result.manifest.tool_state_generation,
            execution_state=commit.checkpoint.execution_state,
            config=commit.config,
            protocol_turn_options=dict(commit.checkpoint.turn_state.mode_turn_options),
            frame_ids=frozenset(f.frame_id for f in commit.agent_frames),
        )
        if self.residency == "active_path" and isinstance(delta, ReplaceFull) and not self.pending_node_ids:
            self.graph = self.graph.fork_current_path()

    def rebase(self, read: SessionRead) -> None:
        """Adopt another writer's head while keeping everything not yet committed.

        Uncommitted nodes that hung under the previously committed leaf (or under a node
        the other writer removed) move under the new head's leaf; nodes on a branch from
        another committed node stay there. Uncommitted usage, tool, execution-state,
        config and protocol-option changes, a checkout and newly opened frames survive,
        so the next commit loses neither side's work. A pending :meth:`reset` keeps the
        local graph: it replaces the stored one by design.
        """
        base = self._base
        pending = [self.graph.nodes[n] for n in self.pending_node_ids]
        pending_ids = set(self.pending_node_ids)
        leaf = self.graph.leaf_node_id
        keep_leaf = leaf in pending_ids or self.leaf_moved
        reset_graph = self.graph if self._reset_pending else None
        tools = self.tools.state() if self.tools.generation != (base.tool_generation or 0) else None
        execution_changed = self.execution_state != base.execution_state
        execution_state = self.execution_state
        config = self.config if self.config != base.config else None
        options = {
            k: v
            for k, v in self.protocol_turn_options.items()
            if k not in base.protocol_turn_options or base.protocol_turn_options[k] != v
        }
        new_frames = [f for f in self.frames if f.frame_id not in base.frame_ids and f.start_node_id is not None]
        current_frame_id = self.current_frame_id
        usage = self.pending_usage

        self.apply_read(read)
        if reset_graph is not None:
            self.graph = reset_graph
            self.needs_full_replace = self._reset_pending = True
        else:
            head_leaf = self.graph.leaf_node_id
            for node in pending:
                parent = node.parent_id
                if parent == base.leaf_node_id or (parent not in self.graph and parent not in pending_ids):
                    parent = head_leaf
                self.graph.add(attrs.evolve(node, parent_id=parent))
            if keep_leaf and leaf in self.graph:
                self.graph.leaf_node_id = leaf
        self.pending_node_ids = [n.node_id for n in pending]
        self.pending_usage = usage
        if tools is not None:
            remote_generation = self.tools.generation
            self.tools.load(attrs.evolve(tools, generation=max(tools.generation, remote_generation + 1)))
        if execution_changed:
            self.execution_state = execution_state
        if config is not None:
            self.config = config
        known = {f.frame_id for f in self.frames}
        self.frames.extend(f for f in new_frames if f.frame_id not in known)
        if any(f.frame_id == current_frame_id for f in self.frames):
            self.current_frame_id = current_frame_id
        if options:
            self.set_protocol_turn_options(options)

    # -- compaction -----------------------------------------------------------------------

    def compaction_context(self, instructions: str | None) -> CompactionContext:
        return CompactionContext(
            session_id=self.session_id,
            messages=tuple(codec.unpack(codec.pack(self.messages()), "messages")),  # a copy the compactor may not alter
            instructions=instructions,
            usage=self.usage_report().entries,
            config=self.config,
        )

    def apply_compaction(self, result: CompactionResult) -> AgentFrame:
        """Open a new agent frame seeded with ``result``; the old history stays in the graph.

        A ``frame`` marker node starts the frame, followed by one message node per seed
        message; the frame inherits the session's protocol turn options.
        """
        frame_id = new_node_id()
        marker = self.append(NodeKind.FRAME, {"frame_id": frame_id, "reason": result.reason})
        seeds = tuple(self.append(NodeKind.MESSAGE, message) for message in result.seed_messages)
        frame = AgentFrame(frame_id, result.reason, seeds, marker, dict(self.protocol_turn_options))
        self.frames.append(frame)
        self.current_frame_id = frame_id
        return frame


# --- the faces -------------------------------------------------------------------------------


class SessionBase:
    """What the sync and the async session share: the state, and every call that needs no storage.

    Plugin hooks receive either face; everything they may call lives here.
    """

    def __init__(self, state: SessionState) -> None:
        self._state = state
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.session_id!r} revision={self.head_revision}>"

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
        """The plugin snapshot as last gathered (at a commit) or loaded; None if no plugin has state."""
        return self._state.plugin_snapshot

    @property
    def dirty(self) -> bool:
        """Whether nodes or usage are waiting for ``commit()``."""
        return self._state.dirty

    @property
    def closed(self) -> bool:
        return self._closed

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

    def set_execution_state(self, data: bytes | None) -> None:
        """Opaque runtime state persisted with each commit (None clears it)."""
        if data is not None and not isinstance(data, bytes | bytearray):
            raise TypeError(f"execution state must be bytes or None, not {type(data).__name__}")
        self._check_open().execution_state = None if data is None else bytes(data)

    def set_protocol_turn_options(self, **options: Any) -> None:
        """Protocol turn options (set by materialization plugins).

        They apply to the session and its current frame, frames opened later inherit them,
        and they are committed in the turn state and the frames.
        """
        self._check_open().set_protocol_turn_options(options)

    def reset(self, graph: SessionGraph | None = None) -> None:
        """Replace the whole graph; the next commit sends ``ReplaceFull``."""
        self._check_open().reset(graph)

    def _checked_node_id(self, node_id: object) -> SessionState:
        state = self._check_open()
        if not isinstance(node_id, str):
            raise InvalidGraphError(f"checkout needs a node id (str), not {type(node_id).__name__}")
        return state


class Session(SessionBase):
    """A live agent session bound to a store. Create it with :meth:`lash.Lash.session`."""

    def __init__(self, lash: Lash, store: SessionStore, state: SessionState) -> None:
        super().__init__(state)
        self._lash = lash
        self._store = store

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> SessionStore:
        """The underlying store, for low-level use."""
        return self._store

    @property
    def lash(self) -> Lash:
        """The handle this session belongs to."""
        return self._lash

    def usage_report(self, *, include_children: bool = False) -> UsageReport:
        """Totals of committed and pending usage; optionally with every child session's."""
        report = self._state.usage_report()
        if include_children:
            report = report + self._lash.usage_of_children(self.session_id)
        return report

    def checkout(self, node_id: str) -> None:
        """Continue from an earlier node: the next append starts a new branch there.

        The frame that node belongs to becomes current; the next commit stores the move.
        With ``active_path`` residency a node not in memory is loaded with its path.
        Raises :class:`~lash.InvalidGraphError` for a node the session does not have.
        """
        state = self._checked_node_id(node_id)
        operations.run(operations.load_path(state, self._store, node_id))
        state.checkout(node_id)

    # -- storage --------------------------------------------------------------------------

    def commit(self) -> CommitResult:
        """Persist everything recorded since the last commit, atomically.

        Raises :class:`~lash.HeadRevisionConflict` when another writer committed first;
        call :meth:`refresh` and commit again.
        """
        self._check_open()
        return operations.run(operations.commit(self._lash, self, self._store))

    def refresh(self) -> None:
        """Load the head another writer moved and re-base uncommitted work on it.

        After a :class:`~lash.HeadRevisionConflict`, ``refresh()`` then ``commit()`` stores
        both sides' nodes (see :meth:`SessionState.rebase` for what survives).
        """
        operations.run(operations.refresh(self._check_open(), self._store))

    def compact(self, instructions: str | None = None) -> bool:
        """Run the configured compactor; when it has a result, open a new frame and commit.

        Returns False when the compactor found nothing to do. A compactor that raises or
        answers with anything but a storable :class:`~lash.CompactionResult` (or None)
        raises :class:`~lash.CompactionError` and changes nothing.
        """
        self._check_open()
        return operations.run(operations.compact(self._lash, self, self._store, instructions))

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
        return operations.run(operations.prune(self._check_open(), self._store))

    def meta(self) -> SessionMeta | None:
        """The stored metadata."""
        return self._store.load_meta()

    def close(self) -> None:
        """Close the store; uncommitted changes are discarded."""
        if not self._closed:
            self._closed = True
            self._store.close()
            self._lash._forget(self)
