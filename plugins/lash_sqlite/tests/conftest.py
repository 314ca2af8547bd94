"""Fixtures shared by the lash-sqlite tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def config(sessions_dir: Path) -> dict:
    """A ``lash.open`` config keeping sessions in ``sessions_dir`` (GC off unless a test sets it)."""
    return {"store": {"backend": "sqlite", "options": {"path": str(sessions_dir)}}, "gc": {"auto_every_commits": 0}}
