import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from lash_langgraph import LashSaver


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def draft(state: State) -> dict:
    return {"steps": ["refund drafted"]}


def review(state: State) -> dict:
    answer = interrupt("approve the refund?")  # pauses the run; the checkpoint is in lash
    return {"steps": [f"reviewer said {answer}"]}


builder = StateGraph(State)
builder.add_node(draft)
builder.add_node(review)
builder.add_edge(START, "draft")
builder.add_edge("draft", "review")
builder.add_edge("review", END)

with LashSaver.from_config() as saver:  # lash.toml, [tool.lash], or SQLite under .lash/
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "order-42"}}
    graph.invoke({"steps": []}, config)  # stops at interrupt(); a new process could resume it
    print(graph.invoke(Command(resume="yes"), config)["steps"])

    # Time travel: run again from the checkpoint before "draft". The thread forks there (in
    # lash, a branch of session "langgraph:order-42"), pauses at the review, takes a new answer.
    before_draft = next(s for s in graph.get_state_history(config) if s.next == ("draft",))
    graph.invoke(None, before_draft.config)
    print(graph.invoke(Command(resume="no"), config)["steps"])
