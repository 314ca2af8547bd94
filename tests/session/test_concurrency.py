"""Two writers on one session: the loser conflicts, refreshes and loses neither side's work."""

from __future__ import annotations

import pytest

import lash
from lash import TokenUsage


def _contents(session: lash.Session) -> list[str]:
    return [m["content"] for m in session.messages()]


def test_loser_gets_head_revision_conflict_and_nothing_is_written(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        a.append_message("user", "from a")
        a.commit()
        b.append_message("user", "from b")
        with pytest.raises(lash.HeadRevisionConflict) as conflict:
            b.commit()
        assert (conflict.value.expected, conflict.value.actual) == (None, 1)
        assert _contents(first.session("s")) == ["from a"]


def test_refresh_then_retry_keeps_both_sides_nodes_usage_and_state(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        a.append_message("user", "base")
        a.commit()
        b.refresh()
        a.append_message("assistant", "a's reply")
        a.record_usage("agent", "m", TokenUsage(input_tokens=1))
        a.commit()
        b.append_message("user", "b's follow-up")
        b.append_message("assistant", "b's reply")
        b.record_usage("agent", "m", TokenUsage(input_tokens=10))
        b.tools.register({"name": "b_tool"})
        b.set_execution_state(b"b state")
        with pytest.raises(lash.HeadRevisionConflict):
            b.commit()
        b.refresh()
        assert b.commit().head_revision == 3
    with place.open() as third:
        resumed = third.session("s")
        assert _contents(resumed) == ["base", "a's reply", "b's follow-up", "b's reply"]
        assert resumed.usage_report().total == TokenUsage(input_tokens=11)
        assert resumed.tools.names() == ["b_tool"]
        assert resumed.execution_state == b"b state"


def test_refresh_keeps_the_other_writers_tools_when_this_one_changed_none(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        a.tools.register({"name": "a_tool"})
        a.set_execution_state(b"a state")
        a.commit()
        b.append_message("user", "b")
        b.refresh()
        b.commit()
        assert (b.tools.names(), b.execution_state) == (["a_tool"], b"a state")


def test_two_new_sessions_racing_to_create_one_id_keep_a_single_initial_frame(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        a.append_message("user", "a")
        a.commit()
        b.append_message("user", "b")
        b.refresh()
        b.commit()
        assert [f.reason for f in b.frames] == ["initial"]
        assert b.current_frame == a.frames[0]
        assert _contents(b) == ["a", "b"]


def test_rebase_keeps_a_branch_started_from_an_earlier_committed_node(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        root = a.append_message("user", "root")
        a.append_message("assistant", "first answer")
        a.commit()
        b.refresh()
        a.append_message("user", "a continues")
        a.commit()
        b.checkout(root)
        retry = b.append_message("assistant", "b retries the answer")
        b.refresh()
        b.commit()
        assert b.graph.nodes[retry].parent_id == root
        assert _contents(b) == ["root", "b retries the answer"]


def test_refresh_keeps_a_compaction_that_lost_the_race(place):
    compaction = {"strategy": "keep-recent", "options": {"keep_last": 1}}
    with place.open(compaction=compaction) as first, place.open(compaction=compaction) as second:
        a, b = first.session("s"), second.session("s")
        a.append_message("user", "one")
        a.append_message("user", "two")
        a.commit()
        b.refresh()
        a.append_message("user", "three")
        a.commit()
        with pytest.raises(lash.HeadRevisionConflict):
            b.compact()
        b.refresh()
        b.commit()
        assert [f.reason for f in b.frames] == ["initial", "compaction"]
        assert _contents(b) == ["two"]
    with place.open() as third:
        assert [f.reason for f in third.session("s").frames] == ["initial", "compaction"]


def test_conflict_with_a_writer_in_another_process(place):
    if place.backend != "sqlite":
        pytest.skip("memory sessions cannot be shared with another process")
    with place.open() as handle:
        session = handle.session("s")
        session.append_message("user", "here")
        session.commit()
        assert place.run("append-commit", "s", "there") == {"head_revision": 2}
        session.append_message("user", "here again")
        with pytest.raises(lash.HeadRevisionConflict):
            session.commit()
        session.refresh()
        assert session.commit().head_revision == 3
    with place.open() as handle:
        resumed = handle.session("s")
        assert _contents(resumed) == ["here", "there", "here again"]
        assert resumed.usage_report().by_source == {"worker": TokenUsage(output_tokens=1)}


class _CountingStore:
    """The session's own store, counting the reads a refresh makes."""

    def __init__(self, store) -> None:
        self._store = store
        self.loads = 0

    def load_session(self, *args, **kwargs):
        self.loads += 1
        return self._store.load_session(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def test_refresh_reads_the_session_only_when_another_writer_moved_the_head(place):
    with place.open() as first, place.open() as second:
        a, b = first.session("s"), second.session("s")
        a.append_message("user", "one")
        a.commit()
        b.refresh()
        counting = b._store = _CountingStore(b._store)
        b.refresh()  # nothing moved: the head alone is read
        assert counting.loads == 0
        a.append_message("user", "two")
        a.commit()
        b.refresh()
        assert counting.loads == 1
        assert _contents(b) == ["one", "two"]
