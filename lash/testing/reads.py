"""Reads: scopes, single nodes, metadata, durability across reopen, closed stores."""

from __future__ import annotations

import pytest

from lash.errors import SessionBindingMismatch, SessionClosedError, UnsupportedReadScope
from lash.model import (
    ActivePath,
    AgentFrame,
    FullGraph,
    HydratedCheckpoint,
    PluginSnapshot,
    SessionMeta,
    ToolState,
    TurnState,
)
from lash.store import Backend, SessionStore
from lash.testing.base import SESSION_ID, BackendFixtures
from lash.testing.builders import INITIAL_FRAME, SessionWriter, chain, event, message, usage

META = SessionMeta(
    SESSION_ID, "conformance run", 1_700_000_000.0, "test-model", cwd="/srv/agent", parent_session_id="p"
)


def _branched(writer: SessionWriter) -> None:
    """root → a → b (leaf) with a branch root → c committed before it."""
    writer.append(*chain("root", "c"))
    writer.append(*chain("a", "b", parent_id="root"))


class ReadTests(BackendFixtures):
    """What reads return, in every backend."""

    def test_load_session_before_any_commit_is_none(self, store: SessionStore) -> None:
        assert store.load_session() is None
        assert store.load_session(ActivePath()) is None

    def test_full_graph_reads_every_node_including_branches(self, writer: SessionWriter) -> None:
        _branched(writer)
        read = writer.store.load_session(FullGraph())
        assert read is not None
        assert list(read.graph.nodes) == ["root", "c", "a", "b"]
        assert read.graph.leaf_node_id == "b"
        assert read.graph.nodes["c"] == message("c", "root")

    def test_active_path_reads_root_to_head_leaf_only(self, writer: SessionWriter) -> None:
        _branched(writer)
        read = writer.store.load_session(ActivePath())
        assert read is not None
        assert list(read.graph.nodes) == ["root", "a", "b"]
        assert read.graph.leaf_node_id == "b"

    def test_active_path_with_explicit_leaf_reads_that_branch(self, writer: SessionWriter) -> None:
        _branched(writer)
        read = writer.store.load_session(ActivePath("c"))
        assert read is not None
        assert list(read.graph.nodes) == ["root", "c"]
        assert read.graph.leaf_node_id == "c"
        assert read.head_revision == 2

    def test_unknown_read_scope_is_refused(self, writer: SessionWriter) -> None:
        writer.append(*chain("a"))
        with pytest.raises(UnsupportedReadScope):
            writer.store.load_session("everything")  # type: ignore[arg-type]

    def test_load_node_returns_the_committed_node(self, writer: SessionWriter) -> None:
        node = event("e", None, {"tool": "grep", "args": [1, 2.5, None, True], "raw": b"\x00\xff"})
        writer.append(node)
        assert writer.store.load_node("e") == node
        assert writer.store.load_node("missing") is None

    def test_meta_round_trips(self, store: SessionStore) -> None:
        assert store.load_meta() is None
        store.save_meta(META)
        assert store.load_meta() == META

    def test_meta_for_another_session_is_refused(self, store: SessionStore) -> None:
        other = SessionMeta("other", "x", 0.0, "m")
        with pytest.raises(SessionBindingMismatch) as info:
            store.save_meta(other)
        assert (info.value.bound, info.value.attempted) == (store.session_id, "other")
        assert store.load_meta() is None

    def test_reopen_after_close_returns_identical_state(self, backend: Backend, writer: SessionWriter) -> None:
        store = writer.store
        store.save_meta(META)
        frames = (INITIAL_FRAME, AgentFrame("frame-1", "compaction", ("c",), "c", {"mode": "plan"}))
        checkpoint = HydratedCheckpoint(
            TurnState(7, mode_turn_options={"temperature": 0.5}),
            ToolState(3, ({"name": "grep"},)),
            PluginSnapshot(2, {"memory": {"facts": ["a", "b"]}}),
            b"\x01" * 5000,
        )
        _branched(writer)
        writer.commit(checkpoint=checkpoint, usage_deltas=[usage("agent", "m", 12, 3)], frames=frames)
        full, path = store.load_session(FullGraph()), store.load_session(ActivePath())
        store.close()
        reopened = self.reopen(backend)
        try:
            again = self.open_store(reopened, SESSION_ID, create=False)
            try:
                assert again.load_session(FullGraph()) == full
                assert again.load_session(ActivePath()) == path
                assert again.load_meta() == META
                assert again.load_node("c") == message("c", "root")
            finally:
                again.close()
        finally:
            if reopened is not backend:
                reopened.close()

    def test_closed_store_raises_session_closed(self, writer: SessionWriter) -> None:
        writer.append(*chain("a"))
        writer.store.close()
        with pytest.raises(SessionClosedError):
            writer.store.load_session()
        with pytest.raises(SessionClosedError):
            writer.store.load_node("a")
        with pytest.raises(SessionClosedError):
            writer.append(message("b", "a"))
