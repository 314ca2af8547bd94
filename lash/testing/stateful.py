"""A hypothesis state machine that checks a backend against a small reference model.

:class:`BackendStateMachine` drives random sequences of storage operations through the
:class:`~lash.store.Backend` / :class:`~lash.store.SessionStore` contract (DESIGN §3) —
open, commits that append on the leaf or branch from earlier nodes, commits with stale
expected revisions or invalid graphs, snapshot changes and non-changes, usage deltas,
tombstones, vacuum, GC, close/reopen and delete over several sessions — and after every
step compares what the backend reads back with a model written here in a few plain dicts.

Run it against your backend in a few lines, with a factory of fresh, empty backends whose
GC grace period is zero (and a ``reopen`` for durable backends)::

    import pytest
    from lash.testing.stateful import BackendStateMachineTests

    class TestMyBackendStateful(BackendStateMachineTests):
        @pytest.fixture
        def backend_factory(self, tmp_path):
            numbers = itertools.count()
            return lambda: MyBackend(path=tmp_path / str(next(numbers)), gc_grace_seconds=0)

        def reopen(self, backend):  # durable backends: close, and build one on the same storage
            backend.close()
            return MyBackend(path=backend.path, gc_grace_seconds=0)

or outside pytest: ``run_backend_state_machine(factory, reopen)``. The number of sequences
follows the loaded hypothesis profile (``ci`` is bounded and derandomized, ``thorough``
runs many more); ``budget`` scales it for slow backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs
import hypothesis.strategies as st
from hypothesis import HealthCheck, event, note, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from lash import codec
from lash.errors import CorruptRecordError, HeadRevisionConflict, InvalidGraphError
from lash.graph import SessionGraph
from lash.model import (
    ActivePath,
    AgentFrame,
    Append,
    BlobRef,
    Checkpoint,
    Commit,
    FullGraph,
    GraphDelta,
    HydratedCheckpoint,
    LedgerEntry,
    Node,
    PluginSnapshot,
    ReplaceFull,
    SessionRead,
    TokenUsage,
    ToolState,
    TurnState,
    Unchanged,
)
from lash.store import Backend, SessionStore
from lash.testing.builders import CONFIG, INITIAL_FRAME
from lash.testing.harness import BackendFactory, BackendFactoryFixtures, Reopen, same_backend

SESSION_IDS = ("alpha", "beta/../\u03b3 2")
"""Sessions the machine works on; the second is hostile as a path."""

SOURCES = ("agent", "subagent:research")
MODELS = ("model-a", "model-b")


@attrs.define
class ModelSession:
    """What one session must read back as: the reference model, deliberately naive."""

    revision: int | None = None
    nodes: dict[str, Node] = attrs.field(factory=dict)  # every stored node, insertion order
    tombstoned: set[str] = attrs.field(factory=set)
    leaf: str | None = None
    checkpoint: HydratedCheckpoint = attrs.field(factory=HydratedCheckpoint)
    ledger: dict[tuple[str, str], TokenUsage] = attrs.field(factory=dict)
    frames: tuple[AgentFrame, ...] = ()

    def visible(self) -> list[Node]:
        return [n for nid, n in self.nodes.items() if nid not in self.tombstoned]

    def is_visible(self, node_id: str | None) -> bool:
        return node_id in self.nodes and node_id not in self.tombstoned

    def path(self, leaf: str | None) -> list[Node]:
        """Visible nodes root → ``leaf``, stopping at a missing or hidden ancestor."""
        path: list[Node] = []
        current = leaf
        while current is not None and self.is_visible(current):
            path.append(self.nodes[current])
            current = self.nodes[current].parent_id
        return path[::-1]

    @staticmethod
    def stored_snapshot(new: Any, previous: Any) -> Any:
        """The snapshot a commit stores: the previous one when its generation/revision is unchanged."""
        if new is None:
            return None
        if previous is not None and _version(previous) == _version(new):
            return previous
        return new

    def check_graph(self, delta: GraphDelta) -> str | None:
        """Why the store must refuse ``delta`` (None: accepted)."""
        if isinstance(delta, ReplaceFull):
            leaf = delta.graph.leaf_node_id
            return None if leaf is None or leaf in delta.graph.nodes else f"leaf: {leaf} not in the graph"
        present = {nid for nid in self.nodes if nid not in self.tombstoned}
        for node in delta.nodes if isinstance(delta, Append) else ():
            stored = self.nodes.get(node.node_id)
            if stored is not None:
                if stored != node:
                    return f"clash: {node.node_id} exists with other content"
                continue
            if node.parent_id is not None and node.parent_id not in present:
                return f"parent: {node.parent_id} of {node.node_id} is absent"
            present.add(node.node_id)
        leaf = delta.leaf_node_id
        return None if leaf is None or leaf in present else f"leaf: {leaf} is absent"

    def apply(self, commit: Commit) -> None:
        delta = commit.graph
        if isinstance(delta, ReplaceFull):
            self.nodes = dict(delta.graph.nodes)
            self.tombstoned = set()
            self.leaf = delta.graph.leaf_node_id
        else:
            for node in delta.nodes if isinstance(delta, Append) else ():
                self.nodes.setdefault(node.node_id, node)
            self.leaf = delta.leaf_node_id
        new, old = commit.checkpoint, self.checkpoint
        self.checkpoint = HydratedCheckpoint(
            turn_state=new.turn_state,
            tool_state=self.stored_snapshot(new.tool_state, old.tool_state),
            plugin_snapshot=self.stored_snapshot(new.plugin_snapshot, old.plugin_snapshot),
            execution_state=new.execution_state,
        )
        for entry in commit.usage_deltas:
            if entry.usage.total:
                self.ledger[entry.key] = self.ledger.get(entry.key, TokenUsage()) + entry.usage
        self.frames = commit.agent_frames
        self.revision = 1 if self.revision is None else self.revision + 1


def _version(snapshot: ToolState | PluginSnapshot | None) -> int | None:
    if isinstance(snapshot, ToolState):
        return snapshot.generation
    return None if snapshot is None else snapshot.revision


def _node(node_id: str, parent_id: str | None, salt: int = 0) -> Node:
    role = "user" if int(node_id[1:]) % 2 else "assistant"
    body = {"role": role, "content": f"{role} text {node_id}", "salt": salt}
    return Node(node_id, parent_id, "message", body, created_at=1_700_000_000.0)


@attrs.define
class MachineStats:
    """How many sequences (machine instances) and steps a run executed (shrinking included)."""

    sequences: int = 0
    checks: int = 0  # invariant checks: one after the initial state and one after every step

    @property
    def steps(self) -> int:
        return self.checks - self.sequences


class BackendStateMachine(RuleBasedStateMachine):
    """The storage contract of one backend, step by step, against :class:`ModelSession` s.

    Build it with ``BackendStateMachine(factory, reopen)`` (what
    :func:`run_backend_state_machine` does), or subclass it and set the class attributes
    ``backend_factory``/``reopen_backend`` to use hypothesis's ``.TestCase``.
    """

    backend_factory: ClassVar[BackendFactory | None] = None
    reopen_backend: ClassVar[Reopen] = staticmethod(same_backend)

    def __init__(
        self,
        backend_factory: BackendFactory | None = None,
        reopen: Reopen | None = None,
        stats: MachineStats | None = None,
    ) -> None:
        super().__init__()
        self.stats = stats if stats is not None else MachineStats()
        self.stats.sequences += 1
        factory = backend_factory or type(self).backend_factory
        if factory is None:
            raise TypeError("pass a backend factory, or set BackendStateMachine.backend_factory in a subclass")
        self._reopen = reopen or type(self).reopen_backend
        self.backend: Backend = factory()
        self.model: dict[str, ModelSession] = {}
        self.stores: dict[str, SessionStore] = {}
        self.next_id = 0

    # -- helpers ----------------------------------------------------------------------------

    def teardown(self) -> None:
        for store in self.stores.values():
            store.close()
        self.backend.close()

    def _new_id(self) -> str:
        self.next_id += 1
        return f"n{self.next_id}"

    @contextmanager
    def _store(self, session_id: str) -> Iterator[SessionStore]:
        """The open store of ``session_id``, or a temporary one."""
        if session_id in self.stores:
            yield self.stores[session_id]
            return
        store = self.backend.open_session(session_id, create=False)
        assert store is not None, f"session {session_id!r} vanished"
        try:
            yield store
        finally:
            store.close()

    def _blob_refs(self, store: SessionStore) -> set[BlobRef]:
        return set(store.blobs.refs())

    def _roots(self, store: SessionStore, read: SessionRead) -> set[BlobRef]:
        """The refs the head keeps alive, each checked to resolve and verify."""
        raw = store.blobs.get(read.checkpoint_ref)
        assert raw is not None, f"head manifest {read.checkpoint_ref} is missing"
        manifest = codec.decode(raw, Checkpoint, "manifest")
        assert manifest.turn_state == read.checkpoint.turn_state
        for ref in manifest.blob_refs():
            assert store.blobs.get(ref) is not None, f"blob {ref} of the head manifest is missing"
        return {read.checkpoint_ref, *manifest.blob_refs()}

    def _open(self, session_id: str) -> SessionStore:
        """The open store of ``session_id``, opened (and created) if need be."""
        if session_id not in self.stores:
            store = self.backend.open_session(session_id)
            assert store is not None, "open_session(create=True) returned None"
            self.stores[session_id] = store
            self.model.setdefault(session_id, ModelSession())
        return self.stores[session_id]

    # -- rules: sessions --------------------------------------------------------------------

    @rule(data=st.data())
    def lifecycle(self, data: st.DataObject) -> None:
        """Close one store, reopen the whole backend, or delete a session; then list sessions."""
        action = data.draw(st.sampled_from(["close", "reopen", "delete"]), label="lifecycle")
        if action == "close" and self.stores:
            session_id = data.draw(st.sampled_from(sorted(self.stores)), label="close")
            self.stores.pop(session_id).close()
        elif action == "reopen":
            for store in self.stores.values():
                store.close()
            self.stores.clear()
            self.backend = self._reopen(self.backend)
        elif action == "delete":
            session_id = data.draw(st.sampled_from(SESSION_IDS), label="delete")
            store = self.stores.pop(session_id, None)
            if store is not None:
                store.close()
            assert self.backend.delete_session(session_id) == (session_id in self.model)
            self.model.pop(session_id, None)
            assert self.backend.open_session(session_id, create=False) is None
        self._check_listing()
        self._check_sessions(self.model.keys() - self.stores.keys())

    def _check_listing(self) -> None:
        infos = {info.session_id: info for info in self.backend.list_sessions()}
        assert set(infos) == set(self.model)
        for session_id, model in self.model.items():
            users = [n for n in model.visible() if n.body["role"] == "user"]
            info = infos[session_id]
            assert info.head_revision == model.revision
            assert info.user_message_count == len(users)
            assert info.first_user_message == (users[0].body["content"] if users else None)

    # -- rules: commits ---------------------------------------------------------------------

    def _draw_delta(self, data: st.DataObject, model: ModelSession) -> GraphDelta:
        stored = list(model.nodes)
        visible = [n.node_id for n in model.visible()]
        shape = data.draw(
            st.sampled_from(["extend", "extend", "branch", "resend", "clash", "unchanged", "replace"]), label="shape"
        )
        if shape in ("branch", "resend", "clash") and not stored:
            shape = "extend"
        if shape == "unchanged":
            leaf = data.draw(st.sampled_from([model.leaf, *visible]), label="leaf")
            return Unchanged(leaf)
        if shape == "replace":
            keep = model.path(model.leaf)
            graph = SessionGraph.from_nodes(keep, model.leaf)
            for _ in range(data.draw(st.integers(0, 2), label="extra")):
                parent = graph.leaf_node_id
                node = _node(self._new_id(), parent)
                graph.add(node)
                graph.leaf_node_id = node.node_id
            if data.draw(st.booleans(), label="dangling leaf"):
                graph.leaf_node_id = "missing-leaf"
            return ReplaceFull(graph)
        nodes: list[Node] = []
        if shape == "extend":
            parent = model.leaf
        elif shape == "branch":  # under any stored node, tombstoned ones included (then refused)
            parent = data.draw(st.sampled_from(stored), label="branch from")
        else:  # resend / clash: a node id that is already stored, often a tombstoned one
            hidden = sorted(model.tombstoned)
            pool = hidden if hidden and data.draw(st.booleans(), label="hidden one") else stored
            old = model.nodes[data.draw(st.sampled_from(pool), label="resent")]
            nodes.append(old if shape == "resend" else attrs.evolve(old, body={**old.body, "salt": 1}))
            parent = old.node_id
        for _ in range(data.draw(st.integers(0 if nodes else 1, 3), label="new nodes")):
            node = _node(self._new_id(), parent)
            nodes.append(node)
            parent = node.node_id
        return Append(tuple(nodes), nodes[-1].node_id)

    def _draw_checkpoint(self, data: st.DataObject, model: ModelSession) -> HydratedCheckpoint:
        old = model.checkpoint
        turn = TurnState(turn_index=data.draw(st.integers(0, 3), label="turn"))
        change = st.sampled_from(["none", "same", "same version, other content", "new version"])
        tools = None
        match data.draw(change, label="tools"):
            case "same":
                tools = old.tool_state
            case "same version, other content" if old.tool_state is not None:
                tools = attrs.evolve(old.tool_state, tools=({"name": f"t{self.next_id}"},))
            case "new version":
                generation = (old.tool_state.generation + 1) if old.tool_state else 1
                tools = ToolState(generation, ({"name": f"tool-{generation}", "doc": "x" * 5000},))
        plugins = None
        match data.draw(change, label="plugins"):
            case "same":
                plugins = old.plugin_snapshot
            case "same version, other content" if old.plugin_snapshot is not None:
                plugins = attrs.evolve(old.plugin_snapshot, entries={"p": self.next_id})
            case "new version":
                revision = (old.plugin_snapshot.revision + 1) if old.plugin_snapshot else 1
                plugins = PluginSnapshot(revision, {"p": revision})
        execution = data.draw(st.sampled_from([None, b"", b"state", b"big state " * 600, old.execution_state]))
        return HydratedCheckpoint(turn, tools, plugins, execution)

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        """One to three commits to one session (sequences reach deep histories sooner)."""
        session_id = data.draw(st.sampled_from(SESSION_IDS), label="session")
        for _ in range(data.draw(st.integers(1, 3), label="commits")):
            self._commit_once(data, session_id)

    def _commit_once(self, data: st.DataObject, session_id: str) -> None:
        store, model = self._open(session_id), self.model[session_id]
        stale = data.draw(st.integers(0, 9), label="stale") == 9
        expected = model.revision
        if stale:
            expected = data.draw(st.sampled_from([r for r in (None, 1, (model.revision or 0) + 1) if r != expected]))
        frames = (
            (INITIAL_FRAME,)
            if data.draw(st.booleans(), label="one frame")
            else (INITIAL_FRAME, AgentFrame("f1", "compaction"))
        )
        commit = Commit(
            session_id=session_id,
            expected_head_revision=expected,
            config=CONFIG,
            graph=self._draw_delta(data, model),
            checkpoint=self._draw_checkpoint(data, model),
            usage_deltas=tuple(
                LedgerEntry(s, m, TokenUsage(input_tokens=i, output_tokens=o))
                for s, m, i, o in data.draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(SOURCES), st.sampled_from(MODELS), st.integers(0, 99), st.integers(0, 9)
                        ),
                        max_size=3,
                    ),
                    label="usage",
                )
            ),
            agent_frames=frames,
            current_agent_frame_id=frames[-1].frame_id,
        )
        refused = model.check_graph(commit.graph)
        note(f"commit {session_id!r} expected={expected} (stored {model.revision}) refused={refused}")
        event(
            "commit: stale" if stale else f"commit: refused, {refused.split(':')[0]}" if refused else "commit: accepted"
        )
        before = self._blob_refs(store)
        if stale:
            try:
                store.commit(commit)
            except HeadRevisionConflict as exc:
                assert (exc.expected, exc.actual) == (expected, model.revision)
            else:
                raise AssertionError(f"stale commit (expected {expected}, stored {model.revision}) was accepted")
        elif refused:
            try:
                store.commit(commit)
            except InvalidGraphError:
                pass
            else:
                raise AssertionError(f"commit that must be refused ({refused}) was accepted")
        else:
            result = store.commit(commit)
            model.apply(commit)
            assert result.head_revision == model.revision
            return
        assert self._blob_refs(store) == before, "a refused commit wrote blobs"

    # -- rules: maintenance -----------------------------------------------------------------

    @precondition(lambda self: any(model.nodes for model in self.model.values()))
    @rule(data=st.data())
    def tombstone(self, data: st.DataObject) -> None:
        session_id = data.draw(st.sampled_from(sorted(s for s, model in self.model.items() if model.nodes)))
        store, model = self._open(session_id), self.model[session_id]
        on_path = {n.node_id for n in model.path(model.leaf)}
        off_path = [nid for nid in model.nodes if nid not in on_path]
        pool = off_path if off_path and data.draw(st.integers(0, 3), label="off path only") else list(model.nodes)
        ids = data.draw(st.sets(st.sampled_from([*pool, "unknown"]), min_size=1, max_size=3), label="ids")
        if ids & on_path:
            try:
                store.tombstone_nodes(ids)
            except InvalidGraphError:
                return
            raise AssertionError(f"tombstoning {sorted(ids & on_path)} on the active path was accepted")
        hidden = {i for i in ids if model.is_visible(i)}
        event(f"tombstone: {min(len(hidden), 2)} hidden")
        assert store.tombstone_nodes(ids) == len(hidden)
        model.tombstoned |= hidden

    @rule(session_id=st.sampled_from(SESSION_IDS))
    def vacuum(self, session_id: str) -> None:
        store = self._open(session_id)
        model = self.model[session_id]
        assert store.vacuum().removed_node_count == len(model.tombstoned)
        for node_id in model.tombstoned:
            del model.nodes[node_id]
        model.tombstoned = set()

    @rule(data=st.data())
    def gc(self, data: st.DataObject) -> None:
        """Collect one session's unreachable blobs, or the whole backend's; exactly the garbage goes."""
        session_id = data.draw(st.sampled_from([None, *SESSION_IDS]), label="gc of")
        if session_id is None:
            self.backend.gc()
        else:
            self._open(session_id).gc_unreachable()
        self._check_sessions(self.model.keys() - self.stores.keys())
        if self.backend.blobs is not None:
            self._check_shared_blobs_are_exactly_the_roots()
        else:  # blobs kept per session: each keeps exactly its head's
            for gc_id in self.model if session_id is None else [session_id]:
                with self._store(gc_id) as store:
                    read = store.load_session()
                    assert self._blob_refs(store) == (self._roots(store, read) if read else set())

    def _check_shared_blobs_are_exactly_the_roots(self) -> None:
        roots: set[BlobRef] = set()
        for session_id in self.model:
            with self._store(session_id) as store:
                read = store.load_session()
                roots |= self._roots(store, read) if read else set()
        blobs = self.backend.blobs
        assert blobs is not None
        assert set(blobs.refs()) == roots

    # -- rules: safe decoding ---------------------------------------------------------------

    @precondition(lambda self: any(model.revision is not None for model in self.model.values()))
    @rule(data=st.data())
    def corrupted_record_read_raises(self, data: st.DataObject) -> None:
        """A damaged head or ledger row makes every read raise naming the session; none leaves it out.

        The bytes are damaged through the storage primitives (stores built on
        :class:`~lash.store.StandardSessionStore`), checked, then put back as they were.
        """
        session_id = data.draw(st.sampled_from(sorted(s for s, m in self.model.items() if m.revision is not None)))
        store, model = self._open(session_id), self.model[session_id]
        storage = getattr(store, "storage", None)
        if storage is None:  # not built on lash's primitives: nothing to damage from here
            return
        target = data.draw(st.sampled_from(["head", "ledger"] if model.ledger else ["head"]), label="damage")
        with storage.transaction(write=False) as txn:
            head, ledger = txn.read_head(), txn.read_ledger()
        with storage.transaction(write=True) as txn:
            if target == "head":
                txn.write_head(model.revision, b"\xc1 damaged")
            else:
                txn.write_ledger(dict.fromkeys(ledger, b"\xc1 damaged"))
        try:
            for scope in (FullGraph(), ActivePath()):
                try:
                    store.load_session(scope)
                except CorruptRecordError as exc:
                    assert repr(session_id) in str(exc), f"the error does not name the session: {exc}"
                else:
                    raise AssertionError(f"a damaged {target} of {session_id!r} was read without an error")
            if target == "head":
                try:
                    self.backend.list_sessions()
                except CorruptRecordError:
                    pass
                else:
                    raise AssertionError(f"listing left out or hid the damaged head of {session_id!r}")
        finally:
            with storage.transaction(write=True) as txn:
                if target == "head":
                    assert head is not None
                    txn.write_head(model.revision, head)
                else:
                    txn.write_ledger(ledger)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def reads_match_the_model(self) -> None:
        """Every open session reads back as its model (closed ones are checked when the backend changes)."""
        self.stats.checks += 1
        self._check_sessions(self.stores)

    def _check_sessions(self, session_ids: Iterable[str]) -> None:
        for session_id in list(session_ids):
            model = self.model[session_id]
            with self._store(session_id) as store:
                full = store.load_session(FullGraph())
                if model.revision is None:
                    assert full is None
                    continue
                assert full is not None, f"session {session_id!r} lost its head"
                assert full.head_revision == model.revision
                assert list(full.graph.nodes.values()) == model.visible()
                assert full.graph.leaf_node_id == model.leaf
                assert full.checkpoint == model.checkpoint
                assert full.token_ledger == tuple(LedgerEntry(s, m, u) for (s, m), u in model.ledger.items())
                assert full.agent_frames == model.frames and full.config == CONFIG
                path = store.load_session(ActivePath())
                assert path is not None and path.head_revision == model.revision
                assert list(path.graph.nodes.values()) == model.path(model.leaf)
                self._roots(store, full)


def run_backend_state_machine(
    backend_factory: BackendFactory, reopen: Reopen = same_backend, *, budget: float = 1.0
) -> MachineStats:
    """Run :class:`BackendStateMachine` on backends from ``backend_factory``; how much it ran.

    The number of sequences is the loaded hypothesis profile's ``max_examples`` times
    ``budget`` (at least 1), with the profile's ``stateful_step_count`` steps at most each.
    """
    profile = settings.default
    run_settings = settings(
        profile,
        max_examples=max(1, round(profile.max_examples * budget)),
        deadline=None,
        suppress_health_check=[*profile.suppress_health_check, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    stats = MachineStats()
    run_state_machine_as_test(lambda: BackendStateMachine(backend_factory, reopen, stats), settings=run_settings)
    return stats


class BackendStateMachineTests(BackendFactoryFixtures):
    """Pytest mixin: the state machine against the backends your ``backend_factory`` builds.

    ``state_machine_budget`` scales the profile's example count (slow backends: below 1).
    """

    state_machine_budget: ClassVar[float] = 1.0

    def test_backend_matches_reference_model(self, backend_factory: BackendFactory, reopen_backend: Reopen) -> None:
        stats = run_backend_state_machine(backend_factory, reopen_backend, budget=self.state_machine_budget)
        print(f"{type(self).__name__}: {stats.sequences} sequences, {stats.steps} steps")  # shown with -s / -rP


__all__ = [
    "BackendStateMachine",
    "BackendStateMachineTests",
    "MachineStats",
    "ModelSession",
    "run_backend_state_machine",
]
