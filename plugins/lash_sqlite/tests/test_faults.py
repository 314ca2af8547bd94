"""Faults in the SQLite backend: a failing primitive, and the process killed between any two SQL statements.

The kill test forks a child that runs one scenario with a ``sqlite3`` trace callback
installed from the test (the backend is not touched): the callback counts the statements
the scenario executes and calls ``os._exit`` at the k-th, before SQLite runs it. The
parent then reopens the files and requires the state before or the state after. k grows
until the scenario completes without being killed.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import traceback
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend

from lash.testing.builders import SessionWriter
from lash.testing.faults import (
    SCENARIOS,
    SESSION_ID,
    FaultInjectionTests,
    Observed,
    Scenario,
    assert_old_or_new,
    assert_still_writable,
    observe,
    seed_session,
)
from lash.testing.harness import BackendFactory, Reopen

KILLED = 17
COMPLETED = 0
CRASHED = 3


class TestSqliteBackendFaults(FaultInjectionTests):
    @pytest.fixture
    def backend_factory(self, sqlite_backend_factory: BackendFactory) -> BackendFactory:
        return sqlite_backend_factory

    @pytest.fixture
    def reopen_backend(self, reopen_sqlite: Reopen) -> Reopen:
        return reopen_sqlite


def run_killed_at(directory: Path, scenario: Scenario, revision: int | None, leaf: str | None, kill_at: int) -> None:
    """In the child: run ``scenario`` and die at its ``kill_at``-th SQL statement."""
    try:
        executed = 0
        armed = False

        def count(statement: str) -> None:
            nonlocal executed
            if armed:
                executed += 1
                if executed == kill_at:
                    os._exit(KILLED)  # no rollback, no close, no atexit: as SIGKILL leaves the files

        connect = sqlite3.connect

        def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
            conn = connect(*args, **kwargs)  # type: ignore[arg-type]
            conn.set_trace_callback(count)
            return conn

        sqlite3.connect = traced_connect  # type: ignore[assignment]  # this child process only
        store = SqliteBackend(path=directory).open_session(SESSION_ID, create=False)
        assert store is not None
        armed = True
        scenario.operation(SessionWriter(store, revision, leaf))
        armed = False
        store.close()
    except BaseException:
        traceback.print_exc()
        os._exit(CRASHED)
    os._exit(COMPLETED)


def observe_directory(directory: Path) -> Observed:
    backend = SqliteBackend(path=directory)
    try:
        return observe(backend)
    finally:
        backend.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_killed_between_any_two_statements_leaves_old_or_new_state(tmp_path: Path, scenario: Scenario) -> None:
    seeded = tmp_path / "seeded"
    backend = SqliteBackend(path=seeded)
    revision, leaf = seed_session(backend, scenario)
    backend.close()  # the last connection checkpoints the WAL: the directory is a complete copy
    old = observe_directory(seeded)
    expected = tmp_path / "expected"
    shutil.copytree(seeded, expected)
    backend = SqliteBackend(path=expected)
    store = backend.open_session(SESSION_ID, create=False)
    assert store is not None
    scenario.operation(SessionWriter(store, revision, leaf))
    store.close()
    backend.close()
    new = observe_directory(expected)

    fork = multiprocessing.get_context("fork")
    kills = 0
    for kill_at in range(1, 200):
        directory = tmp_path / f"killed-at-{kill_at}"
        shutil.copytree(seeded, directory)
        child = fork.Process(target=run_killed_at, args=(directory, scenario, revision, leaf, kill_at))
        child.start()
        child.join(60)
        assert child.exitcode in (KILLED, COMPLETED), f"the child failed at statement {kill_at}: {child.exitcode}"
        seen = observe_directory(directory)
        assert_old_or_new(scenario, old, new, seen, f"{scenario.name}: killed before SQL statement {kill_at}")
        if child.exitcode == COMPLETED:
            assert seen == new
            break
        kills += 1
        backend = SqliteBackend(path=directory)
        try:
            assert_still_writable(backend, seen)
        finally:
            backend.close()
    else:
        raise AssertionError(f"{scenario.name} was still killed after 199 statements")
    assert kills >= 2, f"{scenario.name} ran only {kills} statement(s): the trace hook saw nothing"
    print(f"{scenario.name}: killed before each of its first {kills} SQL statements, then completed")
