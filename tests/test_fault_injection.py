"""The fault-injection harness itself: it counts primitives, fires where planned, and catches a non-atomic backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from lash_memory import MemoryBackend

from lash.errors import BackendError
from lash.store import SessionStorage
from lash.testing.faults import SCENARIOS, FaultPlan, InjectedFault, sweep_faults

COMMIT = next(s for s in SCENARIOS if s.name == "commit")


class _EachCallCommits:
    """A transaction whose every call is its own transaction: a backend that is not atomic."""

    def __init__(self, storage: SessionStorage) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._storage.transaction(write=True) as txn:
                return getattr(txn, name)(*args, **kwargs)

        return call


class _NonAtomicStorage:
    def __init__(self, storage: SessionStorage) -> None:
        self._storage = storage

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        yield _EachCallCommits(self._storage)

    def close(self) -> None:
        self._storage.close()


class NonAtomicMemoryBackend(MemoryBackend):
    """The memory backend with its transactions broken up: every write lands at once."""

    def _open_storage(self, session_id: str, *, create: bool) -> SessionStorage | None:
        storage = super()._open_storage(session_id, create=create)
        return None if storage is None else _NonAtomicStorage(storage)


def test_fault_plan_fails_exactly_the_planned_operation() -> None:
    done: list[str] = []
    plan = FaultPlan(fail_at=2)
    plan.run("first", lambda: done.append("first"))
    with pytest.raises(InjectedFault, match=r"before primitive operation 2 \(second\)"):
        plan.run("second", lambda: done.append("second"))
    assert done == ["first"] and plan.fired
    assert isinstance(InjectedFault("x"), BackendError)


def test_fault_after_an_operation_lets_it_take_effect() -> None:
    done: list[str] = []
    plan = FaultPlan(fail_at=1, after=True)
    with pytest.raises(InjectedFault, match="after primitive operation 1"):
        plan.run("write", lambda: done.append("write"))
    assert done == ["write"]


def test_sweep_passes_an_atomic_backend() -> None:
    report = sweep_faults(lambda: MemoryBackend(gc_grace_seconds=0), COMMIT)
    assert report.operations[0] == "write transaction begin"
    assert report.operations[-1] == "write transaction commit"
    assert report.faults_injected > len(report.operations)


def test_sweep_catches_a_backend_whose_commit_is_not_atomic() -> None:
    with pytest.raises(AssertionError, match="neither"):
        sweep_faults(lambda: NonAtomicMemoryBackend(gc_grace_seconds=0), COMMIT)
