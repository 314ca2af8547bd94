"""SessionGraph: appends, branches, the active path, forks and healing."""

from __future__ import annotations

import pytest

from lash.errors import InvalidGraphError
from lash.graph import SessionGraph
from lash.model import Node


def _ids(nodes: list[Node]) -> list[str]:
    return [n.node_id for n in nodes]


@pytest.fixture
def branched() -> SessionGraph:
    """root → a → b (leaf), with a branch root → c added before a."""
    graph = SessionGraph()
    graph.append("message", {"role": "user", "content": "hi"}, node_id="root")
    graph.append("message", "side", node_id="c")
    graph.append("message", "main", "root", node_id="a")
    graph.append("message", "main", node_id="b")
    return graph


def test_append_under_the_leaf_moves_the_leaf() -> None:
    graph = SessionGraph()
    first = graph.append("message", {"role": "user", "content": "hi"})
    second = graph.append("event", {"tool": "grep"})
    assert graph.leaf_node_id == second
    assert graph.nodes[second].parent_id == first
    assert graph.nodes[first].parent_id is None


def test_append_under_an_unknown_parent_is_refused() -> None:
    graph = SessionGraph()
    with pytest.raises(InvalidGraphError):
        graph.append("message", "x", "nowhere")
    assert len(graph) == 0


def test_append_of_an_existing_id_is_refused() -> None:
    graph = SessionGraph()
    graph.append("message", "x", node_id="n")
    with pytest.raises(InvalidGraphError):
        graph.append("message", "y", node_id="n")


def test_branch_appends_under_an_earlier_node(branched: SessionGraph) -> None:
    assert branched.nodes["a"].parent_id == "root"
    assert branched.nodes["c"].parent_id == "root"
    assert list(branched.nodes) == ["root", "c", "a", "b"]


def test_active_path_runs_root_to_leaf(branched: SessionGraph) -> None:
    assert _ids(branched.active_path()) == ["root", "a", "b"]


def test_active_path_of_another_leaf_follows_its_branch(branched: SessionGraph) -> None:
    assert _ids(branched.active_path("c")) == ["root", "c"]


def test_active_path_of_an_unknown_leaf_is_refused(branched: SessionGraph) -> None:
    with pytest.raises(InvalidGraphError):
        branched.active_path("nowhere")


def test_active_path_of_an_empty_graph_is_empty() -> None:
    assert SessionGraph().active_path() == []


def test_fork_current_path_keeps_only_the_path_and_leaf(branched: SessionGraph) -> None:
    fork = branched.fork_current_path()
    assert list(fork.nodes) == ["root", "a", "b"]
    assert fork.leaf_node_id == "b"
    fork.append("message", "only in the fork")
    assert len(branched) == 4


def test_orphaned_node_ids_are_the_nodes_off_the_active_path(branched: SessionGraph) -> None:
    assert branched.orphaned_node_ids() == ["c"]


def test_heal_keeps_an_intact_leaf(branched: SessionGraph) -> None:
    assert branched.heal_orphaned_leaf() is False
    assert branched.leaf_node_id == "b"


def test_heal_moves_a_missing_leaf_to_the_newest_intact_node(branched: SessionGraph) -> None:
    del branched.nodes["b"]
    assert branched.heal_orphaned_leaf() is True
    assert branched.leaf_node_id == "a"


def test_heal_skips_nodes_whose_chain_is_broken(branched: SessionGraph) -> None:
    branched.append("message", "deep", node_id="d")  # root → a → b → d
    del branched.nodes["a"]  # b and d now have a broken chain
    assert branched.heal_orphaned_leaf() is True
    assert branched.leaf_node_id == "c"


def test_heal_of_a_graph_with_no_intact_node_clears_the_leaf() -> None:
    graph = SessionGraph.from_nodes([Node("x", "gone", "message", None, 0.0)], "x")
    assert graph.heal_orphaned_leaf() is True
    assert graph.leaf_node_id is None


def test_ten_thousand_node_chain_paths_and_heals() -> None:
    graph = SessionGraph()
    for i in range(10_000):
        graph.append("message", i, node_id=f"n{i}", created_at=0.0)
    assert len(graph.active_path()) == 10_000
    assert graph.orphaned_node_ids() == []
    assert len(graph.fork_current_path()) == 10_000
    del graph.nodes["n9999"]
    assert graph.heal_orphaned_leaf() is True
    assert graph.leaf_node_id == "n9998"
    del graph.nodes["n0"]  # every remaining chain is now broken
    assert graph.heal_orphaned_leaf() is True
    assert graph.leaf_node_id is None
