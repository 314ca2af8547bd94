"""What LashSaver promises beyond LangGraph's suite: dedup, GC safety, lash mapping, refusals, many writers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_metadata
from langgraph.checkpoint.serde.types import INTERRUPT
from lash_langgraph import FORMAT_VERSION, Address, LashSaver, ThreadExistsError, UnsupportedPruneStrategy
from lash_langgraph.mapping import parse_session_id

import lash

from .conftest import ConfigFactory


def put(saver: LashSaver, thread: str, parent: dict | None, values: dict, new: dict, ns: str = "", **meta: Any) -> dict:
    """Put a checkpoint whose channels are at versions ``new`` (merged over the parent's)."""
    versions = dict(parent["versions"]) if parent else {}
    versions.update(new)
    checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    stored = saver.put(config, checkpoint, generate_metadata(**meta), new)
    return {**stored, "versions": versions}


def values_at(saver: LashSaver, stored: dict) -> dict[str, Any]:
    found = saver.get_tuple({"configurable": stored["configurable"]})
    assert found is not None
    return found.checkpoint["channel_values"]


def test_unchanged_channel_is_stored_once_in_a_thread_of_1000_checkpoints(sqlite_config: dict, tmp_path: Path) -> None:
    document = "the same 20 KB of retrieved context " * 570
    with LashSaver.from_config(sqlite_config) as saver:
        first = parent = put(saver, "long", None, {"doc": document, "turn": 0}, {"doc": 1, "turn": 1})
        for turn in range(1, 1000):
            parent = put(saver, "long", parent, {"doc": document, "turn": turn}, {"turn": turn + 1})
        assert values_at(saver, first) == {"doc": document, "turn": 0}
        assert values_at(saver, parent) == {"doc": document, "turn": 999}
        assert len(list(saver.list({"configurable": {"thread_id": "long"}}))) == 1000

    with lash.open(sqlite_config) as handle:
        nodes = handle.session("langgraph:long").graph.nodes.values()
    holding_doc = [n for n in nodes if "doc" in n.body.get("values", {})]
    assert len(holding_doc) == 1
    on_disk = sum(f.stat().st_size for f in (tmp_path / "sessions").iterdir())
    assert on_disk < 100 * len(document), (
        f"{on_disk} bytes on disk for 1,000 checkpoints of a {len(document)} B channel"
    )


def test_blob_gc_after_many_puts_leaves_every_checkpoint_readable(lash_config: ConfigFactory) -> None:
    config = {**lash_config(), "gc": {"auto_every_commits": 3}}
    with lash.open(config) as handle:
        saver = LashSaver(handle)
        expected, parent = [], None
        for step in range(24):
            values = {"messages": [f"m{i}" for i in range(step + 1)], "plan": f"plan {step // 5}"}
            new = {"messages": step + 1} | ({"plan": step // 5 + 1} if step % 5 == 0 else {})
            parent = put(saver, "gc-thread", parent, values, new)
            saver.put_writes(parent, [("messages", f"pending {step}")], f"task-{step}")
            expected.append((parent, values))
        put(saver, "gc-thread", None, {"x": 1}, {"x": 1}, ns="child:1")
        saver.close()
        assert handle.gc().root_count > 0

        reopened = LashSaver(handle)  # nothing cached: everything is read back from the store
        for step, (stored, values) in enumerate(expected):
            found = reopened.get_tuple({"configurable": stored["configurable"]})
            assert found.checkpoint["channel_values"] == values
            assert [w[2] for w in found.pending_writes] == [f"pending {step}"]
        assert len(list(reopened.list({"configurable": {"thread_id": "gc-thread"}}))) == 25


def test_checkpoint_written_by_a_newer_adapter_is_refused() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        put(saver, "t", None, {"a": 1}, {"a": 1})
        session = saver.lash.session("langgraph:t")
        session.append_plugin("langgraph.checkpoint", {"format": FORMAT_VERSION + 1, "id": "future"})
        session.commit()
        revision = session.head_revision

        with pytest.raises(lash.SchemaVersionError, match="lash-langgraph") as refused:
            saver.get_tuple({"configurable": {"thread_id": "t"}})
        assert refused.value.found == FORMAT_VERSION + 1
        with pytest.raises(lash.SchemaVersionError):
            put(saver, "t", None, {"a": 2}, {"a": 2})
        with pytest.raises(lash.SchemaVersionError):
            list(saver.list({"configurable": {"thread_id": "t"}}))
        assert saver.lash.session("langgraph:t").head_revision == revision


@pytest.mark.parametrize("thread_id", ["nul\x00inside", "x" * 2000, ""])
def test_thread_id_that_cannot_be_a_session_id_is_refused(thread_id: str) -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        with pytest.raises(lash.InvalidSessionId, match="thread id"):
            put(saver, thread_id, None, {"a": 1}, {"a": 1})
        with pytest.raises(lash.InvalidSessionId):
            saver.get_tuple({"configurable": {"thread_id": thread_id}})
        assert saver.lash.sessions() == []


def test_value_the_serializer_cannot_encode_is_refused_and_nothing_is_stored() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        first = put(saver, "t", None, {"a": 1}, {"a": 1})
        with pytest.raises(lash.SerializationError, match="channel 'lock'"):
            put(saver, "t", first, {"a": 2, "lock": threading.Lock()}, {"a": 2, "lock": 1})
        with pytest.raises(lash.SerializationError, match="write to channel 'fn'"):
            saver.put_writes(first, [("ok", 1), ("fn", lambda: None)], "task")

        latest = saver.get_tuple({"configurable": {"thread_id": "t"}})
        assert latest.checkpoint["id"] == first["configurable"]["checkpoint_id"]
        assert latest.pending_writes == []
        assert saver.lash.session("langgraph:t").head_revision == 1


def test_subgraph_namespaces_are_child_sessions_of_the_thread_session() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        put(saver, "a/b%c ü", None, {"a": 1}, {"a": 1})
        put(saver, "a/b%c ü", None, {"a": 1}, {"a": 1}, ns="tools:1|search:2")
        sessions = {info.session_id: info.parent_session_id for info in saver.lash.sessions()}
    assert sessions == {
        "langgraph:a/b%c ü": None,
        "langgraph-ns:a%2Fb%25c%20%C3%BC/tools:1|search:2": "langgraph:a/b%c ü",
    }
    assert {parse_session_id(s) for s in sessions} == {Address("a/b%c ü"), Address("a/b%c ü", "tools:1|search:2")}
    assert parse_session_id("support-42") is None


def test_a_second_writer_is_seen_and_both_writers_keep_their_checkpoints(sqlite_config: dict) -> None:
    with LashSaver.from_config(sqlite_config) as one, LashSaver.from_config(sqlite_config) as two:
        first = put(one, "shared", None, {"n": 1}, {"n": 1})
        second = put(two, "shared", first, {"n": 2}, {"n": 2})
        assert (
            one.get_tuple({"configurable": {"thread_id": "shared"}}).checkpoint["id"]
            == (second["configurable"]["checkpoint_id"])
        )
        third = put(one, "shared", second, {"n": 3}, {"n": 3})
        two.put_writes(third, [(INTERRUPT, {"ask": "ok?"})], "task")
        history = list(one.list({"configurable": {"thread_id": "shared"}}))
    assert [t.checkpoint["channel_values"]["n"] for t in history] == [3, 2, 1]
    assert history[0].pending_writes == [("task", INTERRUPT, {"ask": "ok?"})]


def test_prune_and_delete_for_runs_keep_values_survivors_read_from_dropped_checkpoints() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        first = put(saver, "t", None, {"doc": "context", "n": 1}, {"doc": 1, "n": 1}, run_id="r1")
        second = put(saver, "t", first, {"doc": "context", "n": 2}, {"n": 2}, run_id="r2")
        third = put(saver, "t", second, {"doc": "context", "n": 3}, {"n": 3}, run_id="r3")

        saver.delete_for_runs(["r1"])
        assert saver.get_tuple({"configurable": first["configurable"]}) is None
        assert values_at(saver, second) == {"doc": "context", "n": 2}

        saver.prune(["t"], strategy="keep_latest")
        assert [t.checkpoint["id"] for t in saver.list({"configurable": {"thread_id": "t"}})] == [
            third["configurable"]["checkpoint_id"]
        ]
        assert values_at(saver, third) == {"doc": "context", "n": 3}
        with pytest.raises(UnsupportedPruneStrategy, match="keep_latest, delete"):
            saver.prune(["t"], strategy="keep_oldest")


def test_copy_onto_a_thread_that_has_checkpoints_is_refused_and_changes_nothing() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        put(saver, "src", None, {"a": 1}, {"a": 1})
        kept = put(saver, "dst", None, {"a": 2}, {"a": 2})
        with pytest.raises(ThreadExistsError, match="'dst' already has checkpoints"):
            saver.copy_thread("src", "dst")
        assert [t.checkpoint["id"] for t in saver.list({"configurable": {"thread_id": "dst"}})] == [
            kept["configurable"]["checkpoint_id"]
        ]
