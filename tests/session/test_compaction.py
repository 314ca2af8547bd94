"""``Session.compact()``: context, new frame, history kept, built-in and failing compactors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import lash


class Scripted:
    """A compactor plugin (``scripted``) that records its context and answers what it is told."""

    def __init__(self, answer: Callable[[lash.CompactionContext], Any]) -> None:
        self.answer = answer
        self.contexts: list[lash.CompactionContext] = []

    @lash.hookimpl
    def lash_register_compactors(self, register: Callable[..., None]) -> None:
        register("scripted", lambda options: self)

    def compact(self, ctx: lash.CompactionContext) -> Any:
        self.contexts.append(ctx)
        return self.answer(ctx)


SCRIPTED = {"strategy": "scripted"}


def _conversation(session: lash.Session, turns: int) -> None:
    for turn in range(turns):
        session.append_message("user", f"q{turn}")
        session.append_message("assistant", f"a{turn}")
        session.record_usage("agent", "m", lash.TokenUsage(input_tokens=1))
    session.commit()


def test_compact_gives_the_compactor_the_current_frame_and_opens_a_seeded_frame(place, spy):
    summary = {"role": "system", "content": "summary of q0..a1"}
    scripted = Scripted(lambda ctx: lash.CompactionResult([summary, *ctx.messages[-1:]]))
    with place.open(scripted, compaction=SCRIPTED) as handle:
        session = handle.session("s")
        session.config = lash.SessionConfig(configured_model="m")
        _conversation(session, 2)
        calls = spy(session)
        assert session.compact("keep decisions") is True
        [ctx] = scripted.contexts
        assert ctx.session_id == "s"
        assert [m["content"] for m in ctx.messages] == ["q0", "a0", "q1", "a1"]
        assert (ctx.instructions, ctx.usage, ctx.config.configured_model) == (
            "keep decisions",
            (lash.LedgerEntry("agent", "m", lash.TokenUsage(input_tokens=2)),),
            "m",
        )
        [committed] = calls.commits  # compact() commits by itself
        frame = session.current_frame
        assert frame.reason == "compaction" and frame is not session.frames[0]
        assert committed.current_agent_frame_id == frame.frame_id
        assert [session.graph.nodes[n].body for n in frame.seed_node_ids] == [summary, ctx.messages[-1]]
        session.append_message("user", "q2")
        assert [m["content"] for m in session.messages()] == ["summary of q0..a1", "a1", "q2"]


def test_full_history_stays_in_the_graph_and_is_readable_after_resume(place):
    with place.open(compaction={"strategy": "keep-recent", "options": {"keep_last": 1}}) as handle:
        session = handle.session("s")
        _conversation(session, 3)
        assert session.compact() is True
        assert [m["content"] for m in session.messages()] == ["a2"]
    with place.open() as handle:
        resumed = handle.session("s")
        assert [m["content"] for m in resumed.messages()] == ["a2"]
        history = [n.body["content"] for n in resumed.graph.active_path() if n.kind == "message"]
        assert history == ["q0", "a0", "q1", "a1", "q2", "a2", "a2"]
        assert [f.reason for f in resumed.frames] == ["initial", "compaction"]


def test_keep_recent_is_registered_through_the_same_hook_as_third_party_compactors(handle):
    registration = handle.plugin_manager.compactors.get("keep-recent")
    assert registration.plugin == "lash.compaction"
    impls = handle.plugin_manager.hook.lash_register_compactors.get_hookimpls()
    assert "lash.compaction" in [impl.plugin_name for impl in impls]


def test_keep_recent_keeps_the_system_message_and_the_last_n(place):
    with place.open(compaction={"strategy": "keep-recent", "options": {"keep_last": 2}}) as handle:
        session = handle.session("s")
        session.append_message("system", "rules")
        _conversation(session, 3)
        assert session.compact() is True
        assert [m["content"] for m in session.messages()] == ["rules", "q2", "a2"]
        assert session.compact() is False  # nothing left to drop


def test_compactor_with_nothing_to_do_changes_nothing(place):
    with place.open(Scripted(lambda ctx: None), compaction=SCRIPTED) as handle:
        session = handle.session("s")
        _conversation(session, 1)
        assert session.compact() is False
        assert (session.head_revision, len(session.frames)) == (1, 1)


def _boom(ctx: lash.CompactionContext) -> Any:
    raise RuntimeError("model unavailable")


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (_boom, "RuntimeError: model unavailable"),
        (lambda ctx: "a summary", "returned str"),
        (lambda ctx: lash.CompactionResult([{"text": "no role"}]), "role"),
        (lambda ctx: lash.CompactionResult([{"role": "system", "content": object()}]), "cannot be stored"),
        (lambda ctx: lash.CompactionResult([], reason=""), "reason"),
    ],
    ids=["raises", "garbage", "not-messages", "unstorable", "empty-reason"],
)
def test_failing_compactor_raises_compaction_error_and_leaves_the_stored_head_unchanged(place, answer, match):
    with place.open(Scripted(answer), compaction=SCRIPTED) as handle:
        session = handle.session("s")
        _conversation(session, 2)
        before = session.store.load_session()
        with pytest.raises(lash.CompactionError, match=match):
            session.compact()
        assert session.store.load_session() == before
        assert [m["content"] for m in session.messages()] == ["q0", "a0", "q1", "a1"]
        assert not session.dirty
