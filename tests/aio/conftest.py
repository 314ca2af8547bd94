"""Fixtures for the lash.aio tests: a SQLite-backed config and a raw lock on a session's database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lash_sqlite import db_file_name


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """A lash config storing sessions as SQLite files under ``tmp_path``."""
    return {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}}}


@contextmanager
def write_locked(config: dict[str, Any], session_id: str) -> Iterator[None]:
    """Hold the SQLite write lock of ``session_id``'s database from a separate connection."""
    path = Path(config["store"]["options"]["path"]) / db_file_name(session_id)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def lock_for(config: dict[str, Any], session_id: str, seconds: float) -> threading.Thread:
    """Hold ``session_id``'s write lock for ``seconds`` from a helper thread; returns once it is held."""
    held = threading.Event()

    def hold() -> None:
        with write_locked(config, session_id):
            held.set()
            threading.Event().wait(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    return thread
