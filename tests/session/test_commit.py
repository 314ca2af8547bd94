"""What ``commit()`` sends, and that a resumed session equals the committed one."""

from __future__ import annotations

import pytest
from session_helpers import Notes, Protocol, describe, stored_node_count

import lash
from lash import SessionGraph


def test_commit_appends_exactly_the_nodes_added_since_the_last_commit(handle, spy):
    session = handle.session("s")
    calls = spy(session)
    first = [session.append_message("user", "hi"), session.append_message("assistant", "hello")]
    session.commit()
    second = [session.append_event("tool_call", {"name": "ls"}), session.append_plugin("trace", [1, 2])]
    session.commit()
    sent = [c.graph for c in calls.commits]
    assert all(isinstance(d, lash.Append) for d in sent)
    assert [[n.node_id for n in d.nodes] for d in sent] == [first, second]
    assert sent[-1].leaf_node_id == second[-1]
    assert stored_node_count(session) == 4


def test_commit_without_new_nodes_sends_unchanged_and_still_bumps_the_revision(handle, spy):
    session = handle.session("s")
    session.append_message("user", "hi")
    session.commit()
    calls = spy(session)
    result = session.commit()
    assert calls.last.graph == lash.Unchanged(session.graph.leaf_node_id)
    assert result.head_revision == 2
    assert stored_node_count(session) == 1


def test_reset_sends_replace_full_once(handle, spy):
    session = handle.session("s")
    session.append_message("user", "old")
    session.commit()
    calls = spy(session)
    graph = SessionGraph()
    graph.append("message", {"role": "user", "content": "new"})
    session.reset(graph)
    session.commit()
    session.append_message("assistant", "after")
    session.commit()
    assert isinstance(calls.commits[0].graph, lash.ReplaceFull)
    assert isinstance(calls.commits[1].graph, lash.Append)
    assert [m["content"] for m in session.messages()] == ["new", "after"]
    assert stored_node_count(session) == 2


def test_resume_heals_an_orphaned_leaf_and_commits_replace_full(place, spy):
    with place.open() as handle:
        session = handle.session("s")
        keep = session.append_message("user", "kept")
        gone = session.append_message("assistant", "lost")
        session.commit()
        # The store refuses a commit whose leaf is missing, so damage the data behind its back.
        with session.store.storage.transaction(write=True) as txn:
            txn.tombstone_nodes([gone])
        with session.store.storage.transaction(write=True) as txn:
            txn.vacuum()  # the head's leaf now points nowhere
    with place.open() as handle:
        session = handle.session("s")
        assert session.graph.leaf_node_id == keep
        calls = spy(session)
        session.commit()
        assert isinstance(calls.last.graph, lash.ReplaceFull)
        session.commit()
        assert isinstance(calls.last.graph, lash.Unchanged)
    with place.open() as handle:
        assert handle.session("s").graph.leaf_node_id == keep


def _busy_session(handle: lash.Lash, notes: Notes) -> lash.Session:
    """A session with something of every kind a commit persists."""
    session = handle.session("rich", plugin_options={"protocol": "tools"})
    session.config = lash.SessionConfig(provider_id="p", configured_model="m", context_window=8192)
    session.tools.register({"name": "search", "parameters": {"q": "str"}})
    notes.notes = ["alpha"]
    session.append_message("system", "be brief")
    for turn in range(3):
        session.append_message("user", f"question {turn}")
        session.append_message("assistant", f"answer {turn}", tokens=[turn, turn + 1])
        session.record_usage("agent", "m", lash.TokenUsage(input_tokens=10, output_tokens=turn))
        session.set_execution_state(f"state {turn}".encode())
        session.commit()
    session.record_usage("tool", "embed", lash.TokenUsage(input_tokens=4))
    assert session.compact() is False  # keep-recent keeps 20: nothing to do
    session.lash.compactor = lash.KeepRecent(keep_last=2)
    assert session.compact("shorter") is True
    session.append_message("user", "after compaction")
    session.commit()
    return session


def test_resumed_session_in_a_new_handle_equals_the_committed_one(place):
    notes = Notes()
    with place.open(notes, Protocol()) as handle:
        committed = describe(_busy_session(handle, notes))
    resumed_notes = Notes()
    with place.open(resumed_notes, Protocol()) as handle:
        resumed = describe(handle.session("rich", plugin_options={"protocol": "tools"}))
    assert resumed == committed
    assert resumed_notes.restored == [{"notes": ["alpha"]}]
    assert committed["plugin_snapshot"]["entries"] == {"session_helpers.Notes": {"notes": ["alpha"]}}
    assert [f["reason"] for f in committed["frames"]] == ["initial", "compaction"]
    assert {t["name"] for t in committed["tools"]["tools"]} == {"search", "note_alpha"}


@pytest.mark.parametrize("residency", ["keep_all", "active_path"])
def test_resumed_session_in_a_new_process_equals_the_committed_one(place, residency):
    if place.backend != "sqlite":
        pytest.skip("memory sessions do not outlive their process")
    notes = Notes()
    with place.open(notes, Protocol()) as handle:
        committed = describe(_busy_session(handle, notes))
    assert place.run("describe", "rich", residency, '{"protocol": "tools"}') == committed


def test_resume_with_active_path_residency_loads_only_the_active_path(place):
    with place.open() as handle:
        session = handle.session("s")
        root = session.append_message("user", "root")
        session.append_message("assistant", "abandoned branch")
        session.commit()
        session.checkout(root)
        kept = session.append_message("assistant", "kept branch")
        session.commit()
        assert len(session.graph) == 3
    with place.open() as handle:
        session = handle.session("s", residency="active_path")
        assert list(session.graph.nodes) == [root, kept]
        assert [m["content"] for m in session.messages()] == ["root", "kept branch"]


def test_active_path_resume_of_a_broken_head_heals_from_the_full_graph_and_keeps_every_branch(place):
    with place.open() as handle:
        session = handle.session("s")
        root = session.append_message("user", "root")
        session.append_message("assistant", "branch one")
        session.commit()
        session.checkout(root)
        two = session.append_message("assistant", "branch two")
        gone = session.append_message("user", "lost")
        session.commit()
        with session.store.storage.transaction(write=True) as txn:  # behind the store's back
            txn.tombstone_nodes([gone])
        with session.store.storage.transaction(write=True) as txn:
            txn.vacuum()  # the head's leaf now points nowhere
    with place.open() as handle:
        session = handle.session("s", residency="active_path")
        assert session.graph.leaf_node_id == two
        session.commit()
        assert stored_node_count(session) == 3
        assert list(session.graph.nodes) == [root, two]  # memory holds the active path again
