"""A real LangGraph agent for the tests: a fake chat model, then a human approval via ``interrupt()``.

Run as a script it resumes a paused thread in a fresh process:
``python support_agent.py CONFIG_JSON THREAD_ID ANSWER`` prints the final messages as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from lash_langgraph import LashSaver

REPLY = "I can refund order 42 to your card."


def build(saver: LashSaver) -> CompiledStateGraph:
    model = GenericFakeChatModel(messages=iter([AIMessage(REPLY), AIMessage(REPLY)]))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def approval(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"question": "send this reply?", "draft": state["messages"][-1].content})
        return {"messages": [AIMessage(f"supervisor: {answer}")]}

    builder = StateGraph(MessagesState)
    builder.add_node(agent)
    builder.add_node(approval)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "approval")
    builder.add_edge("approval", END)
    return builder.compile(checkpointer=saver)


def contents(state: dict[str, Any]) -> list[str]:
    return [m.content for m in state["messages"]]


if __name__ == "__main__":
    config_json, thread_id, answer = sys.argv[1:]
    with LashSaver.from_config(json.loads(config_json)) as saver:
        graph = build(saver)
        final = graph.invoke(Command(resume=answer), {"configurable": {"thread_id": thread_id}})
    print(json.dumps(contents(final)))
