"""Backend-level promises: opening, listing and deleting sessions, and which ids are valid."""

from __future__ import annotations

import pytest

from lash.errors import InvalidSessionId
from lash.model import SessionMeta
from lash.store import Backend
from lash.testing.base import BackendFixtures
from lash.testing.builders import SessionWriter, chain, message

HOSTILE_IDS = {
    "dotdot": "../x",
    "slash": "a/b",
    "unicode": "séance-会话-🚀",
    "long": "L" * 1000,
    "spaces": "  id with spaces  ",
    "sql": "x'; DROP TABLE nodes; --",
}
"""Ids a backend must store as data (never as a path or SQL) and list exactly as given."""

INVALID_IDS = {"empty": "", "nul": "a\x00b", "10kb": "x" * 10_240}


class SessionTests(BackendFixtures):
    """Opening, listing and deleting sessions, in every backend."""

    def _commit_conversation(self, backend: Backend, session_id: str, *texts: str, parent: str | None = None) -> None:
        store = self.open_store(backend, session_id)
        try:
            if parent is not None:
                store.save_meta(SessionMeta(session_id, session_id, 0.0, "m", parent_session_id=parent))
            nodes = []
            for i, text in enumerate(texts):
                nodes.append(message(f"u{i}", nodes[-1].node_id if nodes else None, "user", text))
                nodes.append(message(f"a{i}", f"u{i}", "assistant", f"reply {i}"))
            SessionWriter(store).append(*nodes)
        finally:
            store.close()

    def test_open_unknown_session_without_create_is_none(self, backend: Backend) -> None:
        assert backend.open_session("never-created", create=False) is None

    def test_list_sessions_reports_ids_parent_first_message_and_counts(self, backend: Backend) -> None:
        self._commit_conversation(backend, "parent", "hello there", "second question")
        self._commit_conversation(backend, "child", "sub task", parent="parent")
        infos = {info.session_id: info for info in backend.list_sessions()}
        assert {"parent", "child"} <= infos.keys()
        parent, child = infos["parent"], infos["child"]
        assert (parent.parent_session_id, parent.first_user_message, parent.user_message_count) == (
            None,
            "hello there",
            2,
        )
        assert (child.parent_session_id, child.first_user_message, child.user_message_count) == (
            "parent",
            "sub task",
            1,
        )

    def test_delete_session_removes_it_from_open_and_list(self, backend: Backend) -> None:
        self._commit_conversation(backend, "doomed", "bye")
        self._commit_conversation(backend, "survivor", "hi")
        assert backend.delete_session("doomed") is True
        assert backend.open_session("doomed", create=False) is None
        ids = {info.session_id for info in backend.list_sessions()}
        assert "doomed" not in ids and "survivor" in ids
        assert backend.delete_session("doomed") is False

    @pytest.mark.parametrize("session_id", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
    def test_hostile_session_id_is_stored_listed_and_round_trips(self, backend: Backend, session_id: str) -> None:
        self._commit_conversation(backend, session_id, "payload")
        assert session_id in {info.session_id for info in backend.list_sessions()}
        store = self.open_store(backend, session_id, create=False)
        try:
            assert store.session_id == session_id
            read = store.load_session()
            assert read is not None and read.session_id == session_id
            assert list(read.graph.nodes) == ["u0", "a0"]
        finally:
            store.close()
        assert backend.delete_session(session_id) is True
        assert backend.open_session(session_id, create=False) is None

    def test_hostile_ids_do_not_collide(self, backend: Backend) -> None:
        for name, session_id in HOSTILE_IDS.items():
            self._commit_conversation(backend, session_id, name)
        infos = {info.session_id: info for info in backend.list_sessions()}
        assert {sid: infos[sid].first_user_message for sid in HOSTILE_IDS.values()} == {
            sid: name for name, sid in HOSTILE_IDS.items()
        }

    @pytest.mark.parametrize("session_id", list(INVALID_IDS.values()), ids=list(INVALID_IDS))
    def test_invalid_session_id_is_refused(self, backend: Backend, session_id: str) -> None:
        with pytest.raises(InvalidSessionId):
            backend.open_session(session_id)
        with pytest.raises(InvalidSessionId):
            backend.delete_session(session_id)

    def test_sessions_are_isolated(self, backend: Backend) -> None:
        self._commit_conversation(backend, "one", "first")
        store = self.open_store(backend, "two")
        try:
            assert store.load_session() is None
            assert store.load_node("u0") is None
            SessionWriter(store).append(*chain("x"))
        finally:
            store.close()
        store = self.open_store(backend, "one", create=False)
        try:
            read = store.load_session()
            assert read is not None and list(read.graph.nodes) == ["u0", "a0"]
        finally:
            store.close()
