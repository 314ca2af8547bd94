"""Commit semantics: revisions, optimistic concurrency, graph deltas, snapshots and the ledger."""

from __future__ import annotations

import pytest

from lash.errors import HeadRevisionConflict, InvalidGraphError, SessionBindingMismatch
from lash.graph import SessionGraph
from lash.model import (
    Append,
    Commit,
    HydratedCheckpoint,
    LedgerEntry,
    PluginSnapshot,
    ReplaceFull,
    TokenUsage,
    ToolState,
    TurnState,
    Unchanged,
)
from lash.store import Backend, SessionStore
from lash.testing.base import BackendFixtures
from lash.testing.builders import CONFIG, SessionWriter, chain, message, usage


def _tools(generation: int, *names: str) -> ToolState:
    return ToolState(generation, tuple({"name": n, "description": f"the {n} tool"} for n in names))


class CommitTests(BackendFixtures):
    """What every commit promises, in every backend."""

    # -- revisions --------------------------------------------------------------------------

    def test_first_commit_with_no_expected_revision_creates_revision_1(self, writer: SessionWriter) -> None:
        assert writer.store.load_session() is None
        result = writer.append(*chain("a"))
        assert result.head_revision == 1
        read = writer.store.load_session()
        assert read is not None and read.head_revision == 1

    def test_each_commit_increments_revision_by_exactly_one(self, writer: SessionWriter) -> None:
        revisions = [writer.append(message(f"n{i}", f"n{i - 1}" if i else None)).head_revision for i in range(5)]
        assert revisions == [1, 2, 3, 4, 5]

    def test_stale_revision_conflicts_and_writes_nothing(self, backend: Backend, writer: SessionWriter) -> None:
        store = writer.store
        writer.append(*chain("a", "b"), usage_deltas=[usage("agent", "m", 5)])
        writer.append(message("c", "b"))
        before = store.load_session()
        blobs_before = set(store.blobs.refs())
        stale = Commit(
            session_id=store.session_id,
            expected_head_revision=1,
            config=CONFIG,
            graph=Append((message("d", "c"),), "d"),
            checkpoint=HydratedCheckpoint(TurnState(9), _tools(7, "new"), PluginSnapshot(3, {"p": 1}), b"exec"),
            usage_deltas=(usage("agent", "m", 100),),
        )
        with pytest.raises(HeadRevisionConflict) as info:
            store.commit(stale)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert store.load_session() == before
        assert store.load_node("d") is None
        assert set(store.blobs.refs()) == blobs_before

    def test_no_expected_revision_conflicts_when_a_head_exists(self, writer: SessionWriter) -> None:
        writer.append(*chain("a"))
        writer.revision = None
        with pytest.raises(HeadRevisionConflict) as info:
            writer.append(message("b", "a"))
        assert (info.value.expected, info.value.actual) == (None, 1)
        assert writer.store.load_node("b") is None

    def test_commit_for_another_session_is_refused(self, store: SessionStore) -> None:
        commit = Commit("someone-else", None, CONFIG, Append(chain("a"), "a"), HydratedCheckpoint())
        with pytest.raises(SessionBindingMismatch) as info:
            store.commit(commit)
        assert (info.value.bound, info.value.attempted) == (store.session_id, "someone-else")
        assert store.load_session() is None

    # -- graph deltas -----------------------------------------------------------------------

    def test_append_adds_new_nodes_after_existing_ones_and_moves_leaf(self, writer: SessionWriter) -> None:
        writer.append(*chain("a", "b"))
        writer.append(*chain("c", "d", parent_id="b"))
        read = writer.store.load_session()
        assert read is not None
        assert list(read.graph.nodes) == ["a", "b", "c", "d"]
        assert read.graph.leaf_node_id == "d"

    def test_reappending_an_identical_node_is_accepted(self, writer: SessionWriter) -> None:
        writer.append(*chain("a", "b"))
        writer.append(message("b", "a"), message("c", "b"))
        read = writer.store.load_session()
        assert read is not None and list(read.graph.nodes) == ["a", "b", "c"]

    def test_appending_an_existing_id_with_other_content_is_refused(self, writer: SessionWriter) -> None:
        writer.append(*chain("a", "b"))
        with pytest.raises(InvalidGraphError):
            writer.append(message("b", "a", content="different"), message("c", "b"))
        assert writer.store.load_node("b") == message("b", "a")
        assert writer.store.load_node("c") is None
        read = writer.store.load_session()
        assert read is not None and read.head_revision == 1

    def test_node_with_unknown_parent_is_refused(self, writer: SessionWriter) -> None:
        writer.append(*chain("a"))
        with pytest.raises(InvalidGraphError):
            writer.append(message("orphan", "nowhere"))
        assert writer.store.load_node("orphan") is None
        read = writer.store.load_session()
        assert read is not None and read.head_revision == 1

    def test_unchanged_writes_no_nodes_and_may_move_the_leaf(self, writer: SessionWriter) -> None:
        writer.append(*chain("a", "b"))
        result = writer.commit(Unchanged("a"))
        read = writer.store.load_session()
        assert read is not None
        assert result.head_revision == read.head_revision == 2
        assert list(read.graph.nodes) == ["a", "b"]
        assert read.graph.leaf_node_id == "a"

    def test_unchanged_to_an_unknown_leaf_is_refused(self, writer: SessionWriter) -> None:
        writer.append(*chain("a"))
        with pytest.raises(InvalidGraphError):
            writer.commit(Unchanged("nowhere"))

    def test_replace_full_replaces_the_node_set(self, writer: SessionWriter) -> None:
        writer.append(*chain("a", "b", "c"))
        replacement = SessionGraph.from_nodes(chain("x", "y"), "y")
        writer.commit(ReplaceFull(replacement))
        read = writer.store.load_session()
        assert read is not None
        assert read.graph == replacement
        assert writer.store.load_node("a") is None

    # -- snapshots ----------------------------------------------------------------------------

    def test_tool_state_blob_is_reused_while_generation_is_unchanged(self, writer: SessionWriter) -> None:
        first = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(tool_state=_tools(1, "read")))
        # Same generation, other content: the store must not even look at the new tools.
        second = writer.append(message("b", "a"), checkpoint=HydratedCheckpoint(tool_state=_tools(1, "write")))
        assert first.manifest.tool_state_ref is not None
        assert second.manifest.tool_state_ref == first.manifest.tool_state_ref
        read = writer.store.load_session()
        assert read is not None and read.checkpoint.tool_state == _tools(1, "read")

    def test_tool_state_gets_a_new_blob_when_generation_changes(self, writer: SessionWriter) -> None:
        first = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(tool_state=_tools(1, "read")))
        second = writer.append(message("b", "a"), checkpoint=HydratedCheckpoint(tool_state=_tools(2, "write")))
        assert second.manifest.tool_state_ref not in (None, first.manifest.tool_state_ref)
        assert writer.store.blobs.has(second.manifest.tool_state_ref)
        read = writer.store.load_session()
        assert read is not None and read.checkpoint.tool_state == _tools(2, "write")

    def test_plugin_snapshot_blob_is_reused_while_revision_is_unchanged(self, writer: SessionWriter) -> None:
        first = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(plugin_snapshot=PluginSnapshot(1, {"p": 1})))
        second = writer.append(
            message("b", "a"), checkpoint=HydratedCheckpoint(plugin_snapshot=PluginSnapshot(1, {"p": 2}))
        )
        assert first.manifest.plugin_snapshot_ref is not None
        assert second.manifest.plugin_snapshot_ref == first.manifest.plugin_snapshot_ref
        assert second.manifest.plugin_snapshot_revision == 1
        read = writer.store.load_session()
        assert read is not None and read.checkpoint.plugin_snapshot == PluginSnapshot(1, {"p": 1})

    def test_plugin_snapshot_gets_a_new_blob_when_revision_changes(self, writer: SessionWriter) -> None:
        first = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(plugin_snapshot=PluginSnapshot(1, {"p": 1})))
        second = writer.append(
            message("b", "a"), checkpoint=HydratedCheckpoint(plugin_snapshot=PluginSnapshot(2, {"p": 2}))
        )
        assert second.manifest.plugin_snapshot_ref not in (None, first.manifest.plugin_snapshot_ref)
        assert second.manifest.plugin_snapshot_revision == 2
        read = writer.store.load_session()
        assert read is not None and read.checkpoint.plugin_snapshot == PluginSnapshot(2, {"p": 2})

    def test_execution_state_is_stored_and_resumed(self, writer: SessionWriter) -> None:
        state = bytes(range(256)) * 40
        result = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(TurnState(3), execution_state=state))
        assert result.manifest.execution_state_ref is not None
        read = writer.store.load_session()
        assert read is not None
        assert read.checkpoint.execution_state == state
        assert read.checkpoint.turn_state == TurnState(3)
        writer.commit(checkpoint=HydratedCheckpoint(TurnState(4), execution_state=None))
        read = writer.store.load_session()
        assert read is not None and read.checkpoint.execution_state is None

    # -- ledger -------------------------------------------------------------------------------

    def test_ledger_merges_by_source_and_model_and_drops_zero_totals(self, writer: SessionWriter) -> None:
        writer.append(
            *chain("a"),
            usage_deltas=[usage("agent", "big", 10, 1), usage("tool", "small", 0, 0), usage("agent", "big", 5, 2)],
        )
        writer.commit(usage_deltas=[usage("agent", "big", 1), usage("agent", "small", 0, 4)])
        read = writer.store.load_session()
        assert read is not None
        assert read.token_ledger == (
            LedgerEntry("agent", "big", TokenUsage(input_tokens=16, output_tokens=3)),
            LedgerEntry("agent", "small", TokenUsage(output_tokens=4)),
        )
