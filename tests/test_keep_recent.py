"""The built-in ``keep-recent`` compactor keeps a window the model provider will accept."""

from __future__ import annotations

from lash import KeepRecent, SessionConfig
from lash.compaction import CompactionContext


def context(*messages: dict) -> CompactionContext:
    return CompactionContext("s", tuple(messages), None, (), SessionConfig())


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def call(call_id: str) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "function": {"name": "ls"}}]}


def result(call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": "a.txt"}


def test_keeps_the_last_messages_and_the_leading_system_message():
    system = {"role": "system", "content": "be brief"}
    seed = KeepRecent(keep_last=2).compact(context(system, user("1"), user("2"), user("3")))
    assert seed is not None
    assert seed.seed_messages == [system, user("2"), user("3")]


def test_nothing_to_compact_when_the_frame_fits():
    assert KeepRecent(keep_last=3).compact(context(user("1"), user("2"))) is None


def test_window_widens_back_to_the_call_of_a_kept_tool_result():
    messages = (user("1"), call("c1"), result("c1"), user("2"))
    seed = KeepRecent(keep_last=2).compact(context(*messages))
    assert seed is not None
    assert seed.seed_messages == [call("c1"), result("c1"), user("2")]


def test_parallel_tool_results_keep_their_shared_call():
    messages = (user("1"), call("c1"), result("c1"), result("c2"), user("2"))
    seed = KeepRecent(keep_last=2).compact(context(*messages))
    assert seed is not None
    assert seed.seed_messages[0] == call("c1")


def test_anthropic_tool_result_parts_count_as_tool_results():
    tool_use = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]}
    answer = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a"}]}
    seed = KeepRecent(keep_last=1).compact(context(user("1"), tool_use, answer))
    assert seed is not None
    assert seed.seed_messages == [tool_use, answer]


def test_a_window_that_would_widen_to_the_start_compacts_nothing():
    assert KeepRecent(keep_last=1).compact(context(call("c1"), result("c1"))) is None
