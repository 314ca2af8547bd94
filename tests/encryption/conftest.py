"""Fixtures for encryption at rest: master keys in the environment, configs, secrets to look for."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.keys import generate_key

pytest.importorskip("cryptography", reason="encryption at rest needs lash[encryption]")


class Secrets:
    """A session holding every kind of secret lash stores, and a scanner for their plaintext."""

    message = "the launch code is tangerine-42"
    tool = "open_the_vault_of_tangerines"
    model = "tangerine-model-7"
    state = b"execution-state-tangerine " * 64

    def record(self, handle: lash.Lash, session_id: str = "vault") -> lash.CommitResult:
        """Commit a message, a tool, usage of a model and execution state to ``session_id``."""
        session = handle.session(session_id)
        session.append_message("user", self.message)
        session.append_message("assistant", "I cannot share " + self.message)
        session.tools.register({"name": self.tool, "description": "opens " * 200})
        session.record_usage("agent", self.model, lash.TokenUsage(input_tokens=12, output_tokens=3))
        session.set_execution_state(self.state)
        result = session.commit()
        session.close()
        return result

    def check(self, handle: lash.Lash, session_id: str = "vault") -> None:
        """``session_id`` reads back exactly as :meth:`record` wrote it."""
        session = handle.session(session_id)
        try:
            assert [m["content"] for m in session.messages()][:2] == [self.message, "I cannot share " + self.message]
            assert self.tool in session.tools
            assert session.execution_state == self.state
            assert [(e.model, e.usage.input_tokens) for e in session.usage_report().entries] == [(self.model, 12)]
        finally:
            session.close()

    def found_in(self, data: bytes) -> list[str]:
        """Which secrets appear in plaintext in ``data``."""
        needles = {
            "message": self.message.encode(),
            "tool": self.tool.encode(),
            "model": self.model.encode(),
            "execution state": self.state[:26],
        }
        return [name for name, needle in needles.items() if needle in data]


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh base64 master key in ``$LASH_MASTER_KEY`` (the ``env`` provider's default)."""
    key = generate_key()
    monkeypatch.setenv("LASH_MASTER_KEY", key)
    return key


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


ConfigFor = Callable[..., dict[str, Any]]


@pytest.fixture
def sqlite_config(sessions_dir: Path) -> ConfigFor:
    """``sqlite_config(encryption=None)``: SQLite under ``sessions_dir``, with ``[encryption]`` when given."""

    def config(encryption: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "store": {"backend": "sqlite", "options": {"path": str(sessions_dir)}},
            "gc": {"auto_every_commits": 0},
        }
        if encryption is not None:
            data["encryption"] = encryption
        return data

    return config


@pytest.fixture
def env_encryption() -> dict[str, Any]:
    """``[encryption]`` with the ``env`` provider and its defaults."""
    return {"key_provider": "env"}


class RawSqlite:
    """Reads and writes a session's SQLite file through its own connection, behind lash's back."""

    def __init__(self, sessions_dir: Path) -> None:
        self.sessions_dir = sessions_dir

    def db(self, session_id: str) -> Path:
        from lash_sqlite import SqliteBackend

        backend = SqliteBackend(path=self.sessions_dir)
        try:
            return backend.session_path(session_id)
        finally:
            backend.close()

    def rows(self, session_id: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db(session_id))
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def write(self, session_id: str, sql: str, params: tuple[Any, ...] = ()) -> int:
        conn = sqlite3.connect(self.db(session_id))
        try:
            with conn:
                return conn.execute(sql, params).rowcount
        finally:
            conn.close()

    def all_bytes(self) -> bytes:
        """Every byte of every file (databases and their -wal and -shm files)."""
        return b"".join(p.read_bytes() for p in sorted(self.sessions_dir.rglob("*")) if p.is_file())


@pytest.fixture
def raw_sqlite(sessions_dir: Path) -> RawSqlite:
    return RawSqlite(sessions_dir)
