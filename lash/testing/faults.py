"""Fault injection at the storage boundary: fail the k-th primitive operation, for every k.

:class:`FaultPlan` counts the primitive operations a store performs — each
:class:`~lash.store.StorageTransaction` call, the begin and the commit of each
transaction, and each raw :class:`~lash.blobs.BlobStorage` call — and raises
:class:`InjectedFault` (a :class:`~lash.errors.BackendError`, as a real I/O failure
surfaces) at operation ``fail_at``, either before it takes effect or just after (a lost
acknowledgement). :func:`faulty_store` wraps a backend's own primitives with a plan.

:func:`sweep_faults` runs one :class:`Scenario` (a commit, a tombstone, a vacuum, a GC)
once without faults to learn its operation count and outcome, then again for every k in
both modes on a fresh backend, reopens the backend after each fault and requires that a
reader sees either the state before or the state after — never a mix — that every blob
the head references resolves, and that the session still accepts a commit.

A third-party backend built on :class:`~lash.store.StorageBackend` runs it with the same
factory as the state machine::

    class TestMyBackendFaults(FaultInjectionTests):
        @pytest.fixture
        def backend_factory(self, tmp_path): ...   # fresh, empty, gc_grace_seconds=0

        def reopen(self, backend): ...             # durable backends: close, rebuild on the same storage
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar, TypeVar

import attrs
import pytest

from lash import codec
from lash.blobs import EnvelopeBlobStore
from lash.errors import BackendError, LashError
from lash.model import (
    ActivePath,
    Append,
    BlobRef,
    Checkpoint,
    FullGraph,
    HydratedCheckpoint,
    PluginSnapshot,
    SessionRead,
    ToolState,
    TurnState,
)
from lash.store import Backend, Head, StandardSessionStore, collect_shared_blobs
from lash.testing.builders import SessionWriter, chain, usage
from lash.testing.harness import BackendFactory, BackendFactoryFixtures, Reopen, same_backend

T = TypeVar("T")

SESSION_ID = "faulty"


class InjectedFault(BackendError):
    """The failure a :class:`FaultPlan` injects."""


@attrs.define
class FaultPlan:
    """Which primitive operation fails (1-based; None only counts), and whether after it took effect."""

    fail_at: int | None = None
    after: bool = False
    operations: list[str] = attrs.field(factory=list)
    fired: bool = False

    def run(self, name: str, operation: Callable[[], T]) -> T:
        """Perform one primitive operation, failing it if it is the planned one."""
        self.operations.append(name)
        planned = len(self.operations) == self.fail_at
        if planned and not self.after:
            self._fire(name, "before")
        result = operation()
        if isinstance(result, Iterator):  # a lazy listing fails here, not later in the caller
            result = iter(list(result))  # type: ignore[assignment]
        if planned:
            self._fire(name, "after")
        return result

    def _fire(self, name: str, when: str) -> None:
        self.fired = True
        raise InjectedFault(f"injected fault {when} primitive operation {len(self.operations)} ({name})")


class _Faulty:
    """Every public method of ``inner`` as one counted primitive operation of ``plan``."""

    def __init__(self, inner: Any, plan: FaultPlan, label: str) -> None:
        self._inner = inner
        self._plan = plan
        self._label = label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            return self._plan.run(f"{self._label}.{name}", functools.partial(attr, *args, **kwargs))

        return counted


class FaultySessionStorage:
    """A :class:`~lash.store.SessionStorage` whose begin, calls and commit are counted operations."""

    def __init__(self, inner: Any, plan: FaultPlan) -> None:
        self._inner = inner
        self._plan = plan

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        kind = "write" if write else "read"
        with ExitStack() as stack:
            txn = self._plan.run(
                f"{kind} transaction begin", lambda: stack.enter_context(self._inner.transaction(write=write))
            )
            yield _Faulty(txn, self._plan, "txn")
            if not self._plan.after:  # failing before the commit: the backend rolls back
                self._plan.run(f"{kind} transaction commit", lambda: None)
        if self._plan.after:  # failing after it: the change is durable, the caller sees an error
            self._plan.run(f"{kind} transaction commit", lambda: None)

    def close(self) -> None:
        self._inner.close()


def faulty_store(backend: Backend, session_id: str, plan: FaultPlan) -> StandardSessionStore:
    """The store of ``session_id`` with every storage and blob primitive counted by ``plan``.

    Needs a backend built on :class:`~lash.store.StorageBackend` (a
    :class:`StandardSessionStore` over an :class:`EnvelopeBlobStore`).
    """
    store = backend.open_session(session_id)
    if not isinstance(store, StandardSessionStore) or not isinstance(store.blobs, EnvelopeBlobStore):
        raise TypeError(f"fault injection needs a lash.store.StorageBackend, not {type(backend).__name__}")
    blobs = store.blobs.evolve(storage=_Faulty(store.blobs.storage, plan, "blobs"))  # keeps encryption, if any
    shared_gc = None
    if backend.blobs is not None:  # one blob store for every session: collect with every head as roots

        def shared_gc() -> Any:
            grace = getattr(backend, "gc_grace_seconds", 0.0)
            return collect_shared_blobs(blobs, functools.partial(_heads, backend), grace)

    return StandardSessionStore(session_id, FaultySessionStorage(store.storage, plan), blobs, shared_gc=shared_gc)


def _heads(backend: Backend) -> list[Head]:
    heads = []
    for info in backend.list_sessions():
        store = backend.open_session(info.session_id, create=False)
        if isinstance(store, StandardSessionStore):
            try:
                head = store.load_head()
            finally:
                store.close()
            if head is not None:
                heads.append(head)
    return heads


# --- scenarios ---------------------------------------------------------------------------


def _checkpoint(turn: int, tools: int, plugins: int) -> HydratedCheckpoint:
    return HydratedCheckpoint(
        TurnState(turn),
        ToolState(tools, ({"name": f"tool-{tools}", "doc": "d" * 5000},)),
        PluginSnapshot(plugins, {"plugin": plugins}),
        f"execution state {turn}".encode() * 300,
    )


def seed_history(writer: SessionWriter) -> None:
    """Three commits leaving two branches off the path (one tombstoned) and garbage blobs."""
    writer.append(*chain("root", "a1", "a2"), checkpoint=_checkpoint(1, 1, 1), usage_deltas=[usage("agent", "m", 5)])
    writer.append(*chain("b1", parent_id="root"), checkpoint=_checkpoint(2, 2, 1))
    writer.append(*chain("c1", parent_id="root"), checkpoint=_checkpoint(3, 2, 2))
    writer.store.tombstone_nodes(["a1", "a2"])


@attrs.frozen
class Scenario:
    """A seeded session and one operation on it that must be atomic."""

    name: str
    seed: Callable[[SessionWriter], None]
    operation: Callable[[SessionWriter], object]


def _next_commit(writer: SessionWriter) -> object:
    nodes = chain("d1", "d2", parent_id=writer.leaf)
    deltas = [usage("agent", "m", 7, 3), usage("subagent", "m2", 11)]
    return writer.commit(Append(nodes, "d2"), checkpoint=_checkpoint(4, 3, 2), usage_deltas=deltas)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("first commit", lambda writer: None, _next_commit),
    Scenario("commit", seed_history, _next_commit),
    Scenario("tombstone", seed_history, lambda writer: writer.store.tombstone_nodes(["b1"])),
    Scenario("vacuum", seed_history, lambda writer: writer.store.vacuum()),
    Scenario("gc", seed_history, lambda writer: writer.store.gc_unreachable()),
)


# --- the sweep ---------------------------------------------------------------------------


@attrs.frozen
class Observed:
    """What a reader of the reopened backend sees."""

    read: SessionRead | None
    path: tuple[str, ...]
    blobs: frozenset[BlobRef]


@attrs.frozen
class SweepReport:
    """How many primitive operations the scenario performs and how many faults were injected."""

    scenario: str
    operations: tuple[str, ...]
    faults_injected: int


def observe(backend: Backend) -> Observed:
    """What a reader of session :data:`SESSION_ID` sees, after checking every blob of its head resolves."""
    store = backend.open_session(SESSION_ID, create=False)
    assert store is not None, "the session vanished"
    try:
        read = store.load_session(FullGraph())  # hydrates every snapshot: verifies their hashes
        path: tuple[str, ...] = ()
        if read is not None:
            raw = store.blobs.get(read.checkpoint_ref)
            assert raw is not None, f"head manifest {read.checkpoint_ref} is missing"
            for ref in codec.decode(raw, Checkpoint, "manifest").blob_refs():
                assert store.blobs.get(ref) is not None, f"blob {ref} of the head is missing"
            active = store.load_session(ActivePath())
            assert active is not None
            path = tuple(active.graph.nodes)
        return Observed(read, path, frozenset(store.blobs.refs()))
    finally:
        store.close()


def assert_still_writable(backend: Backend, observed: Observed) -> None:
    """A commit on top of what ``observed`` saw succeeds: the fault left no lock or half-state behind."""
    store = backend.open_session(SESSION_ID, create=False)
    assert store is not None
    try:
        read = observed.read
        writer = SessionWriter(store, read.head_revision if read else None, read.graph.leaf_node_id if read else None)
        writer.append(*chain("after-fault", parent_id=writer.leaf))
    finally:
        store.close()


def seed_session(backend: Backend, scenario: Scenario) -> tuple[int | None, str | None]:
    """Write the scenario's history to session :data:`SESSION_ID`; the head revision and leaf it left."""
    store = backend.open_session(SESSION_ID)
    assert store is not None
    writer = SessionWriter(store)
    try:
        scenario.seed(writer)
    finally:
        store.close()
    return writer.revision, writer.leaf


def _run(
    factory: BackendFactory, reopen: Reopen, scenario: Scenario, plan: FaultPlan
) -> tuple[Observed, Observed, BaseException | None]:
    """Seed a fresh backend, run the scenario under ``plan``, reopen; (before, after, error)."""
    backend = factory()
    try:
        revision, leaf = seed_session(backend, scenario)
        before = observe(backend)
        store = faulty_store(backend, SESSION_ID, plan)
        error: BaseException | None = None
        try:
            scenario.operation(SessionWriter(store, revision, leaf))
        except Exception as exc:
            error = exc
        finally:
            store.close()
        backend = reopen(backend)
        after = observe(backend)
        assert_still_writable(backend, after)
        return before, after, error
    finally:
        backend.close()


def assert_old_or_new(scenario: Scenario, old: Observed, new: Observed, seen: Observed, where: str) -> None:
    """``seen`` is the state before the scenario or the state after it, never a mix."""
    outcome = (seen.read, seen.path)
    assert outcome in ((old.read, old.path), (new.read, new.path)), f"{where} left a state that is neither"
    if scenario.name == "gc":
        assert seen.blobs in (old.blobs, new.blobs), f"{where} deleted part of the garbage"


def has_effect(operation: str) -> bool:
    """Whether a primitive operation changes storage (a fault after it differs from one before the next)."""
    name = operation.rsplit(".", 1)[-1]
    return not name.startswith(("read", "exists", "list")) and operation != "read transaction commit"


def sweep_faults(factory: BackendFactory, scenario: Scenario, reopen: Reopen = same_backend) -> SweepReport:
    """Inject a fault at every primitive operation of ``scenario``, before and after it takes effect."""
    clean = FaultPlan()
    old, new, error = _run(factory, reopen, scenario, clean)
    assert error is None, f"{scenario.name} failed without a fault: {error!r}"
    assert clean.operations, f"{scenario.name} performed no primitive operation"
    injected = 0
    for after in (False, True):
        for k, name in enumerate(clean.operations, start=1):
            if after and not has_effect(name):  # failing after a read is failing before the next operation
                continue
            plan = FaultPlan(fail_at=k, after=after)
            _, seen, error = _run(factory, reopen, scenario, plan)
            where = f"{scenario.name}: fault {'after' if after else 'before'} operation {k} ({plan.operations[-1]})"
            assert plan.fired, f"{where} was never reached: the operation count is not deterministic"
            assert isinstance(error, LashError), f"{where} surfaced {error!r}, not a lash error"
            injected += 1
            assert_old_or_new(scenario, old, new, seen, where)
    return SweepReport(scenario.name, tuple(clean.operations), injected)


class FaultInjectionTests(BackendFactoryFixtures):
    """Pytest mixin: every scenario with a fault at every primitive operation.

    ``fault_scenarios`` names the scenarios to run (default: all). A backend composed of
    another one plus a blob store may keep only those that touch blobs.
    """

    fault_scenarios: ClassVar[frozenset[str]] = frozenset(s.name for s in SCENARIOS)

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
    def test_fault_at_any_primitive_leaves_old_or_new_state(
        self, backend_factory: BackendFactory, reopen_backend: Reopen, scenario: Scenario
    ) -> None:
        if scenario.name not in self.fault_scenarios:
            pytest.skip(f"{scenario.name!r} is not in {type(self).__name__}.fault_scenarios")
        report = sweep_faults(backend_factory, scenario, reopen_backend)
        assert report.faults_injected >= len(report.operations) + 1  # before each, after the commit at least
