"""Reading an SDK conversation out of a lash session graph: branches, turns and per-turn usage.

Besides one ``message`` node per item, the adapter writes three small plugin nodes:

* ``plugin:openai_agents.branch`` ``{"name"}`` — a branch starts below it. The session's root
  is the marker of ``main``; :meth:`LashSession.create_branch_from_turn` appends one under
  the node before the chosen user turn.
* ``plugin:openai_agents.pop`` ``{"branch", "abandoned"}`` — ``pop_item`` moved the branch back
  here; the leaf it left (``abandoned``) is no longer the tip of any branch.
* ``plugin:openai_agents.usage`` — the usage of one run, after the items of its turn.

A branch is a leaf of the graph that no pop abandoned; its name is that of the nearest marker
(branch or pop) on its path. Turn *N* of a branch is its *N*-th user item, counting along the
whole path but not the compaction seeds (copies of earlier items): numbering survives a
compaction, and branching from an early turn travels back to before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

import lash
from lash_openai_agents.items import is_user_message

BRANCH = "openai_agents.branch"
POP = "openai_agents.pop"
USAGE = "openai_agents.usage"
MAIN = "main"


def node_kind(plugin_type: str) -> str:
    """The node kind lash gives a node appended with ``append_plugin(plugin_type, ...)``."""
    return f"plugin:{plugin_type}"


@attrs.frozen
class Branch:
    """A named branch: its tip (a leaf of the graph) and when it was created."""

    name: str
    leaf_node_id: str
    created_at: float


@attrs.frozen
class Turn:
    """A user turn of a branch: its number and the node of its user item."""

    number: int
    node: lash.Node


class History:
    """A read-only view of one session graph (the graph and frames of a lash session)."""

    def __init__(self, graph: lash.SessionGraph, frames: Iterable[lash.AgentFrame]) -> None:
        self.graph = graph
        self._seed_ids = {node_id for frame in frames for node_id in frame.seed_node_ids}

    def path(self, leaf_node_id: str | None = None) -> list[lash.Node]:
        return self.graph.active_path(leaf_node_id) if (leaf_node_id or self.graph.leaf_node_id) else []

    # -- branches -----------------------------------------------------------------------

    def branches(self) -> dict[str, Branch]:
        """Every branch by name, oldest first (a name's newest tip if, unusually, it has two)."""
        parents = {node.parent_id for node in self.graph.nodes.values()}
        abandoned = {node.body.get("abandoned") for node in self.graph.nodes.values() if node.kind == node_kind(POP)}
        tips: dict[str, Branch] = {}
        for node_id in self.graph.nodes:
            if node_id in parents or (node_id in abandoned and node_id != self.graph.leaf_node_id):
                continue
            name, created_at = self._name_on(self.path(node_id))
            tips[name] = Branch(name, node_id, created_at)
        return dict(sorted(tips.items(), key=lambda entry: entry[1].created_at))

    def current_branch(self) -> str:
        return self._name_on(self.path())[0]

    def names_used(self) -> set[str]:
        """Every branch name ever given in this session (a name is never reused, as in the SDK)."""
        return {n.body.get("name") for n in self.graph.nodes.values() if n.kind == node_kind(BRANCH)}

    @staticmethod
    def _name_on(path: Sequence[lash.Node]) -> tuple[str, float]:
        for node in reversed(path):
            if node.kind == node_kind(BRANCH):
                return str(node.body.get("name")), node.created_at
            if node.kind == node_kind(POP):
                return str(node.body.get("branch")), node.created_at
        return MAIN, path[0].created_at if path else 0.0

    # -- turns and usage ----------------------------------------------------------------

    def items(self, path: Sequence[lash.Node]) -> list[lash.Node]:
        """The item nodes on ``path``, without compaction seeds (copies of earlier items)."""
        return [node for node in path if node.kind == "message" and node.node_id not in self._seed_ids]

    def turns(self, path: Sequence[lash.Node]) -> list[Turn]:
        user_nodes = (node for node in self.items(path) if isinstance(node.body, dict) and is_user_message(node.body))
        return [Turn(number, node) for number, node in enumerate(user_nodes, start=1)]

    def usage_records(self, path: Sequence[lash.Node]) -> list[UsageRecord]:
        """The usage records on ``path``, each with the turn it follows (turn 0: before any user item)."""
        turns = {t.node.node_id: t for t in self.turns(path)}
        current: Turn | None = None
        out: list[UsageRecord] = []
        for node in path:
            if node.node_id in turns:
                current = turns[node.node_id]
            elif node.kind == node_kind(USAGE):
                out.append(UsageRecord(current.number if current else 0, current, node))
        return out


@attrs.frozen
class UsageRecord:
    """One run's usage (``node.body``, see :mod:`lash_openai_agents.usage`) and the turn it belongs to."""

    turn_number: int
    turn: Turn | None
    node: lash.Node
