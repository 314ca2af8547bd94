"""Fixtures for the retention tests: a config per backend in the repo, and sessions to judge."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lash

BACKENDS = ("memory", "sqlite")


@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A ``lash.open()`` config dict for each backend; blob GC keeps nothing for a grace period."""
    name = request.param
    if name == "sqlite" and importlib.util.find_spec("lash_sqlite") is None:
        pytest.skip("lash-sqlite is not installed (pip install -e plugins/lash_sqlite)")
    options = {"path": str(tmp_path / "sessions")} if name == "sqlite" else {}
    return {
        "store": {"backend": name, "options": options},
        "compaction": {"strategy": "keep-recent", "options": {"keep_last": 1}},
        "gc": {"grace_seconds": 0},
    }


def record_session(handle: lash.Lash, session_id: str, *texts: str) -> lash.Session:
    """A session with one committed user message per text (still open)."""
    session = handle.session(session_id)
    for text in texts:
        session.append_message("user", text)
        session.commit()
    return session


@pytest.fixture
def record() -> Callable[..., lash.Session]:
    """``record(handle, session_id, *texts)``: a session with one committed user message per text."""
    return record_session
