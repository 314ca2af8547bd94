"""Fixtures shared by the lash-sqlite tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend

from lash.store import Backend


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def config(sessions_dir: Path) -> dict:
    """A ``lash.open`` config keeping sessions in ``sessions_dir`` (GC off unless a test sets it)."""
    return {"store": {"backend": "sqlite", "options": {"path": str(sessions_dir)}}, "gc": {"auto_every_commits": 0}}


@pytest.fixture
def sqlite_backend_factory(tmp_path: Path) -> Callable[[], SqliteBackend]:
    """Fresh backends, each in its own directory (the model-based and fault-injection suites)."""
    numbers = itertools.count()
    return lambda: SqliteBackend(path=tmp_path / f"backend-{next(numbers)}")


@pytest.fixture
def reopen_sqlite() -> Callable[[Backend], Backend]:
    """Close a backend and open a new one on its directory: only what reached the files survives."""

    def reopen(backend: Backend) -> Backend:
        assert isinstance(backend, SqliteBackend)
        backend.close()
        return SqliteBackend(path=backend.path)

    return reopen
