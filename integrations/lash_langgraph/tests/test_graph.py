"""A compiled StateGraph with a fake chat model on LashSaver: interrupt, resume in a new process, time travel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from langgraph.types import Command
from lash_langgraph import LashSaver

import lash

from .support_agent import REPLY, build, contents

AGENT = Path(__file__).with_name("support_agent.py")


def test_interrupted_run_resumes_in_a_fresh_process_and_forks_from_history(sqlite_config: dict[str, Any]) -> None:
    config = {"configurable": {"thread_id": "ticket-7"}}
    with LashSaver.from_config(sqlite_config) as saver:
        paused = build(saver).invoke({"messages": [("user", "Refund order 42")]}, config)
    assert paused["__interrupt__"][0].value == {"question": "send this reply?", "draft": REPLY}

    resumed = subprocess.run(
        [sys.executable, str(AGENT), json.dumps(sqlite_config), "ticket-7", "approved"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(resumed.stdout) == ["Refund order 42", REPLY, "supervisor: approved"]

    with LashSaver.from_config(sqlite_config) as saver:
        graph = build(saver)
        assert contents(graph.get_state(config).values) == ["Refund order 42", REPLY, "supervisor: approved"]
        history = list(graph.get_state_history(config))
        before_agent = next(s for s in history if s.next == ("agent",))
        graph.invoke(None, before_agent.config)  # time travel: a fork from an earlier checkpoint
        forked = graph.invoke(Command(resume="rejected"), config)
        assert contents(forked) == ["Refund order 42", REPLY, "supervisor: rejected"]
        # The approved branch is still there, reachable by its checkpoint.
        assert contents(graph.get_state(history[0].config).values)[-1] == "supervisor: approved"

    with lash.open(sqlite_config) as handle:
        stored = handle.session("langgraph:ticket-7").graph
    fork_id = before_agent.config["configurable"]["checkpoint_id"]
    fork_point = next(n for n in stored.nodes.values() if n.body.get("id") == fork_id)
    branches = [
        n for n in stored.nodes.values() if n.kind == "plugin:langgraph.checkpoint" and n.body["parent"] == fork_id
    ]
    assert len(branches) == 2, "the original run and the time-travel run both continue the fork point"
    first, second = ({n.node_id for n in stored.active_path(b.node_id)} for b in branches)
    assert fork_point.node_id in first & second
    assert branches[0].node_id not in second and branches[1].node_id not in first, "two lash branches"
    assert branches[1].node_id in {n.node_id for n in stored.active_path()}, "the head follows the newest run"
