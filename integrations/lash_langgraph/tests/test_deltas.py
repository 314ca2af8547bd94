"""Append-only lists (a ``messages`` channel) are stored as the items each checkpoint added (format 2).

Every value read back is compared with what LangGraph's own ``InMemorySaver`` returns for the
same graph run, so "equal, same types" means equal to LangGraph, not to a value we made up.

``data/v1_thread.lash`` is a ``lash export`` of a thread written by lash-langgraph 0.1.0 (format 1,
before deltas) running :func:`build` on lash-sqlite: three questions, then a fork from the
checkpoint after the first answer. ``data/v1_thread.json`` is what that saver's ``list`` returned
for every checkpoint.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from lash_langgraph import FORMAT_VERSION, LashSaver

import lash
from lash import codec
from lash.cli.archive import import_session, read_archive

from .conftest import ConfigFactory

DATA = Path(__file__).with_name("data")
CHECKPOINT_KIND = "plugin:langgraph.checkpoint"


class State(MessagesState):
    turns: int


def agent(state: State) -> dict[str, Any]:
    last = state["messages"][-1].content
    return {"messages": [AIMessage(f"reply to {last}", id=f"ai-{last[:20]}")], "turns": state.get("turns", 0) + 1}


def build(saver: BaseCheckpointSaver) -> CompiledStateGraph:
    """The graph the format-1 fixture (``data/v1_thread.lash``) was written with."""
    builder = StateGraph(State)
    builder.add_node(agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=saver)


def ask(graph: CompiledStateGraph, config: dict, question: str) -> None:
    graph.invoke({"messages": [HumanMessage(question, id=f"user-{question[:20]}")]}, config)


def history(graph: CompiledStateGraph, config: dict) -> list[tuple[Any, ...]]:
    """Every checkpoint's values, newest first, with each message's type (ids differ between savers)."""
    return [
        (
            [(type(m), m.content, m.id) for m in s.values.get("messages", [])],
            s.values.get("turns"),
            s.next,
            s.metadata["step"],
        )
        for s in graph.get_state_history(config)
    ]


def checkpoint_nodes(saver: LashSaver, thread_id: str) -> list[lash.model.Node]:
    graph = saver.lash.session(f"langgraph:{thread_id}").graph
    return [n for n in graph.nodes.values() if n.kind == CHECKPOINT_KIND]


def node_bytes(nodes: list[lash.model.Node]) -> int:
    return sum(len(codec.pack(n.body)) for n in nodes)


def test_stored_bytes_grow_linearly_with_the_turns_of_a_messages_thread() -> None:
    content = "a long answer about refunds and shipping. " * 40  # ~1.7 KB per message
    serde = JsonPlusSerializer()
    one_message = len(serde.dumps_typed(AIMessage(f"reply to 100: {content}", id="ai-100: a long answer"))[1])
    sizes = {}
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        graph = build(saver)
        config = {"configurable": {"thread_id": "long"}}
        for turn in range(1, 201):
            ask(graph, config, f"{turn}: {content}")
            if turn in (100, 200):
                sizes[turn] = node_bytes(checkpoint_nodes(saver, "long"))
        assert len(graph.get_state(config).values["messages"]) == 400

    # 400 messages stored once each (the question twice: also as the graph's input), plus a
    # record per checkpoint; whole lists would be ~100x this.
    assert sizes[200] < 3 * 400 * one_message, (sizes, one_message)
    assert sizes[200] < 2.3 * sizes[100], f"bytes grow faster than the turns: {sizes}"


def test_values_read_back_equal_langgraph_own_saver_across_forks_and_rewrites(lash_config: ConfigFactory) -> None:
    def script(saver: BaseCheckpointSaver) -> list[tuple[Any, ...]]:
        graph = build(saver)
        config = {"configurable": {"thread_id": "forks"}}
        for question in ("one", "two", "three"):
            ask(graph, config, question)
        fork_point = next(s for s in graph.get_state_history(config) if s.values.get("turns") == 1 and not s.next)
        fork = graph.invoke(  # time travel: the fork's list extends the list of the older checkpoint
            {"messages": [HumanMessage("forked", id="user-forked")]}, fork_point.config
        )
        assert [m.content for m in fork["messages"]][-2:] == ["forked", "reply to forked"]
        # A list that drops an item is no extension: stored whole, and the next turns extend it again.
        graph.update_state(config, {"messages": [RemoveMessage(id="user-one")]})
        ask(graph, config, "four")
        return history(graph, config)

    expected = script(InMemorySaver())
    with lash.open(lash_config()) as handle:
        saver = LashSaver(handle)
        assert script(saver) == expected
        saver.close()
        assert history(build(LashSaver(handle)), {"configurable": {"thread_id": "forks"}}) == expected  # reread

        nodes = {n.body["id"]: n.body for n in checkpoint_nodes(LashSaver(handle), "forks")}
    fork_body = next(b for b in nodes.values() if "deltas" in b and b["deltas"]["messages"][4][0][1].count(b"forked"))
    base_id = fork_body["deltas"]["messages"][1]
    lineage = []
    current: str | None = fork_body["parent"]
    while current is not None:
        lineage.append(current)
        current = nodes[current]["parent"]
    assert base_id in lineage, "the fork's delta is based on its own lineage, not the abandoned branch"
    assert any("messages" in b["values"] for b in list(nodes.values())[1:]), "the rewritten list is stored whole"


@pytest.mark.parametrize(
    ("steps", "as_deltas"),
    [
        ([[Send("node", {"n": 1})], [Send("node", {"n": 1}), Send("other", {"n": 2})]], 1),
        ([[1, "a"], [1, "a", b"raw", None, 2.5, True, {"k": [1, 2]}]], 1),
        ([["a"], ["a", ("tuple", 1)], ["a", ["tuple", 1], "b"]], 1),  # a tuple comes back as a list: stored whole
        ([["a", "b"], ["b", "a", "c"], ["b", "a", "c", "d"]], 1),  # reordered: no extension, stored whole
    ],
)
def test_list_values_read_back_as_langgraph_gives_them(steps: list[list[Any]], as_deltas: int) -> None:
    def stored(saver: BaseCheckpointSaver) -> list[list[Any]]:
        config: dict = {"configurable": {"thread_id": "types", "checkpoint_ns": ""}}
        for number, value in enumerate(steps, 1):
            checkpoint = {
                "v": 4,
                "id": f"1ef00000-0000-6000-8000-{number:012}",
                "ts": "2026-01-01T00:00:00+00:00",
                "channel_values": {"items": value},
                "channel_versions": {"items": number},
                "versions_seen": {},
                "updated_channels": ["items"],
            }
            config = saver.put(config, checkpoint, {"step": number}, {"items": number})
        return [t.checkpoint["channel_values"]["items"] for t in saver.list(config)]

    expected = stored(InMemorySaver())
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        found = stored(saver)
        assert sum("deltas" in n.body for n in checkpoint_nodes(saver, "types")) == as_deltas
    assert found == expected
    assert [[type(item) for item in value] for value in found] == [[type(item) for item in value] for value in expected]


def test_a_thread_written_in_format_1_reads_back_and_continues_with_deltas(lash_config: ConfigFactory) -> None:
    fixture = json.loads((DATA / "v1_thread.json").read_text())
    thread = {"configurable": {"thread_id": fixture["thread_id"]}}
    with lash.open(lash_config()) as handle:
        import_session(handle, read_archive((DATA / "v1_thread.lash").read_bytes()))
        saver = LashSaver(handle)
        formats = {n.body["format"] for n in checkpoint_nodes(saver, fixture["thread_id"])}
        assert formats == {1}

        def read_back() -> dict[str, Any]:
            return {
                t.checkpoint["id"]: {
                    "messages": [
                        [type(m).__name__, m.content, m.id] for m in t.checkpoint["channel_values"].get("messages", [])
                    ],
                    "turns": t.checkpoint["channel_values"].get("turns"),
                }
                for t in saver.list(thread)
            }

        assert read_back() == fixture["checkpoints"]
        graph = build(saver)
        latest = graph.get_state(thread).values["messages"]
        ask(graph, thread, "after the upgrade")
        saver.close()

        saver = LashSaver(handle)  # nothing cached: read from the store
        continued = build(saver).get_state(thread).values["messages"]
        assert [m.content for m in continued] == [m.content for m in latest] + [
            "after the upgrade",
            "reply to after the upgrade",
        ]
        new_nodes = [
            n.body for n in checkpoint_nodes(saver, fixture["thread_id"]) if n.body["format"] == FORMAT_VERSION
        ]
        assert any("deltas" in body for body in new_nodes), "the first format-2 checkpoint extends the format-1 list"
        assert {k: v for k, v in read_back().items() if k in fixture["checkpoints"]} == fixture["checkpoints"]


def _tamper(saver: LashSaver, thread_id: str, change: Any) -> str:
    """Append a copy of the newest checkpoint node, newer than it, with ``change`` applied to its messages delta."""
    session = saver.lash.session(f"langgraph:{thread_id}")
    newest = max((n for n in session.graph.nodes.values() if n.kind == CHECKPOINT_KIND), key=lambda n: n.body["id"])
    body = json.loads(json.dumps(newest.body, default=lambda b: b.hex()))  # a deep copy; bytes restored below
    body["id"] = str(uuid6())  # time-ordered: newer than every checkpoint of the thread
    body["parent"] = newest.body["id"]
    body["checkpoint"] = list(newest.body["checkpoint"])
    body["metadata"] = list(newest.body["metadata"])
    body["values"] = dict(newest.body["values"])
    delta = list(newest.body["deltas"]["messages"])
    body["deltas"] = {"messages": change(delta)}
    session.append_plugin("langgraph.checkpoint", body)
    session.commit()
    session.close()
    return body["id"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: [d[0], "1ef00000-0000-6000-8000-000000000000", *d[2:]], "not stored"),
        (lambda d: [*d[:3], d[3] + 1, d[4]], "extends"),
    ],
    ids=["missing base", "wrong base length"],
)
def test_a_delta_whose_base_is_missing_or_corrupt_raises_a_lash_error_naming_thread_and_checkpoint(
    change: Any, reason: str
) -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        graph = build(saver)
        config = {"configurable": {"thread_id": "tampered"}}
        for question in ("one", "two"):
            ask(graph, config, question)
        bad_id = _tamper(saver, "tampered", change)

        fresh = LashSaver(saver.lash)
        with pytest.raises(lash.CorruptRecordError, match=reason) as raised:
            fresh.get_tuple(config)
        assert "'tampered'" in str(raised.value) and bad_id in str(raised.value)
        with pytest.raises(lash.CorruptRecordError):
            list(fresh.list(config))
        older = list(fresh.list(config, before={"configurable": {"checkpoint_id": bad_id}}))
        assert [m.content for m in older[0].checkpoint["channel_values"]["messages"]][-1] == "reply to two"
        fresh.close()


def test_a_list_item_the_serializer_cannot_encode_is_refused_and_nothing_is_stored() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        graph = build(saver)
        config = {"configurable": {"thread_id": "t"}}
        ask(graph, config, "one")
        revision = saver.lash.session("langgraph:t").head_revision
        latest = saver.get_tuple(config)
        checkpoint = {**latest.checkpoint, "id": str(uuid6())}
        messages = [*latest.checkpoint["channel_values"]["messages"], threading.Lock()]
        checkpoint["channel_values"] = {**checkpoint["channel_values"], "messages": messages}
        with pytest.raises(lash.SerializationError, match="channel 'messages'"):
            saver.put(latest.config, checkpoint, {"step": 9}, {"messages": "99"})
        assert saver.lash.session("langgraph:t").head_revision == revision
        assert saver.get_tuple(config).checkpoint["id"] == latest.checkpoint["id"]


def test_prune_and_delete_for_runs_keep_lists_whose_deltas_were_based_on_dropped_checkpoints() -> None:
    with LashSaver.from_config({"store": {"backend": "memory"}}) as saver:
        graph = build(saver)
        config = {"configurable": {"thread_id": "runs"}}
        for number, question in enumerate(("one", "two", "three")):
            graph.invoke(
                {"messages": [HumanMessage(question, id=f"user-{question}")]},
                {**config, "metadata": {"run_id": f"run-{number}"}},
            )
        expected = {t.checkpoint["id"]: t.checkpoint["channel_values"] for t in saver.list(config)}
        run_0 = [t.checkpoint["id"] for t in saver.list(config, filter={"run_id": "run-0"})]

        saver.delete_for_runs(["run-0"])
        fresh = LashSaver(saver.lash)
        survivors = {t.checkpoint["id"]: t.checkpoint["channel_values"] for t in fresh.list(config)}
        assert survivors == {k: v for k, v in expected.items() if k not in run_0}

        fresh.prune(["runs"], strategy="keep_latest")
        (latest,) = LashSaver(saver.lash).list(config)
        assert latest.checkpoint["channel_values"] == expected[max(expected)]
        (node,) = checkpoint_nodes(fresh, "runs")
        assert "messages" in node.body["values"], "the only checkpoint left holds its list whole"
        fresh.close()


def test_a_writer_whose_session_is_stale_stores_its_delta_against_the_other_writers_checkpoint(
    sqlite_config: dict,
) -> None:
    def put(saver: LashSaver, parent: dict, number: int, items: list[str]) -> dict:
        checkpoint = {
            "v": 4,
            "id": f"1ef00000-0000-6000-8000-{number:012}",
            "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {"items": items},
            "channel_versions": {"items": number},
            "versions_seen": {},
            "updated_channels": ["items"],
        }
        return saver.put(parent, checkpoint, {"step": number}, {"items": number})

    root: dict = {"configurable": {"thread_id": "two-writers", "checkpoint_ns": ""}}
    with LashSaver.from_config(sqlite_config) as one, LashSaver.from_config(sqlite_config) as two:
        first = put(one, root, 1, ["a"])
        second = put(two, first, 2, ["a", "b"])
        third = put(one, second, 3, ["a", "b", "c"])  # `one` has not seen `second` until it writes
        assert one.get_tuple(third).checkpoint["channel_values"]["items"] == ["a", "b", "c"]
        nodes = {n.body["id"]: n.body for n in checkpoint_nodes(one, "two-writers")}
    third_delta = nodes[third["configurable"]["checkpoint_id"]]["deltas"]["items"]
    assert third_delta[1:4] == [second["configurable"]["checkpoint_id"], 2, 2]
    assert [item[1] for item in third_delta[4]] == [JsonPlusSerializer().dumps_typed("c")[1]]
