"""The session graph: an append-only tree of nodes with one current leaf.

Branches are nodes appended under an earlier node; the *active path* is the chain from the
root to the leaf. Every operation here costs O(path length) or O(nodes), never more.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable
from typing import Any, Final, Literal

import attrs

from lash.errors import InvalidGraphError
from lash.model import Node


class _Parent(enum.Enum):
    LEAF = "the current leaf"


AT_LEAF: Final = _Parent.LEAF
"""Default ``parent_id`` of :meth:`SessionGraph.append`: under the current leaf."""


def new_node_id() -> str:
    """A fresh, globally unique node id."""
    return uuid.uuid4().hex


@attrs.define(eq=True)
class SessionGraph:
    """Nodes in insertion order plus the current leaf.

    The graph is the one mutable structure of the model: agents append to it every turn.
    """

    nodes: dict[str, Node] = attrs.field(factory=dict)
    leaf_node_id: str | None = None

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node], leaf_node_id: str | None = None) -> SessionGraph:
        graph = cls({n.node_id: n for n in nodes})
        graph.leaf_node_id = leaf_node_id
        return graph

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def append(
        self,
        kind: str,
        body: Any,
        parent_id: str | Literal[_Parent.LEAF] | None = AT_LEAF,
        *,
        node_id: str | None = None,
        created_at: float | None = None,
    ) -> str:
        """Add a node under ``parent_id`` (default: the leaf), make it the leaf, return its id."""
        parent = self.leaf_node_id if parent_id is AT_LEAF else parent_id
        if parent is not None and parent not in self.nodes:
            raise InvalidGraphError(f"cannot append under unknown node {parent!r}")
        nid = node_id or new_node_id()
        if nid in self.nodes:
            raise InvalidGraphError(f"node id {nid!r} already exists")
        self.nodes[nid] = Node(nid, parent, kind, body, time.time() if created_at is None else created_at)
        self.leaf_node_id = nid
        return nid

    def add(self, node: Node) -> None:
        """Insert an existing node (its parent must be present) without moving the leaf."""
        if node.parent_id is not None and node.parent_id not in self.nodes:
            raise InvalidGraphError(f"node {node.node_id!r} has unknown parent {node.parent_id!r}")
        existing = self.nodes.get(node.node_id)
        if existing is not None and existing != node:
            raise InvalidGraphError(f"node id {node.node_id!r} already exists with other content")
        self.nodes[node.node_id] = node

    def active_path(self, leaf: str | None = None) -> list[Node]:
        """Nodes from the root to ``leaf`` (default: the current leaf)."""
        current = self.leaf_node_id if leaf is None else leaf
        if current is not None and current not in self.nodes:
            raise InvalidGraphError(f"unknown leaf node {current!r}")
        path: list[Node] = []
        seen: set[str] = set()
        while current is not None:
            node = self.nodes.get(current)
            if node is None:
                raise InvalidGraphError(f"broken chain: node {current!r} is missing")
            if current in seen:
                raise InvalidGraphError(f"cycle in the graph at node {current!r}")
            seen.add(current)
            path.append(node)
            current = node.parent_id
        path.reverse()
        return path

    def fork_current_path(self) -> SessionGraph:
        """A new graph holding only the active path, with the same leaf."""
        return SessionGraph.from_nodes(self.active_path(), self.leaf_node_id)

    def _chain_intact(self) -> dict[str, bool]:
        """For every node, whether all its ancestors are present (memoised, O(nodes))."""
        intact: dict[str, bool] = {}
        for start in self.nodes:
            stack: list[str] = []
            current: str | None = start
            result = True
            while current is not None and current not in intact:
                node = self.nodes.get(current)
                if node is None or current in stack:
                    result = False
                    break
                stack.append(current)
                current = node.parent_id
            else:
                result = True if current is None else intact[current]
            for nid in stack:
                intact[nid] = result
        return intact

    def _reaches_root(self, node_id: str) -> bool:
        """Whether every ancestor of ``node_id`` (and it) is present, without a cycle."""
        seen: set[str] = set()
        current: str | None = node_id
        while current is not None:
            node = self.nodes.get(current)
            if node is None or current in seen:
                return False
            seen.add(current)
            current = node.parent_id
        return True

    def heal_orphaned_leaf(self) -> bool:
        """If the leaf is missing or its chain is broken, move it to the newest intact node.

        Returns True when the leaf changed.
        """
        if self.leaf_node_id is None and not self.nodes:
            return False
        if self.leaf_node_id is not None and self._reaches_root(self.leaf_node_id):
            return False  # the usual case, checked along the leaf's path only
        intact = self._chain_intact()
        if self.leaf_node_id is not None and intact.get(self.leaf_node_id, False):
            return False
        newest = next((nid for nid in reversed(self.nodes) if intact.get(nid)), None)
        changed = newest != self.leaf_node_id
        self.leaf_node_id = newest
        return changed

    def orphaned_node_ids(self) -> list[str]:
        """Nodes that are not on the active path, in insertion order."""
        on_path = {n.node_id for n in self.active_path()} if self.leaf_node_id else set()
        return [nid for nid in self.nodes if nid not in on_path]
