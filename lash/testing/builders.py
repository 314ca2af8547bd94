"""Small builders for conformance tests: nodes, chains and a writer that tracks the head.

They keep each contract test down to the behaviour it states. Every value is
deterministic (fixed timestamps), so two reads of the same data compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from lash.model import (
    AgentFrame,
    Append,
    Commit,
    CommitResult,
    GraphDelta,
    HydratedCheckpoint,
    LedgerEntry,
    Node,
    ReplaceFull,
    SessionConfig,
    TokenUsage,
    Unchanged,
)
from lash.store import SessionStore

CONFIG = SessionConfig(provider_id="test-provider", configured_model="test-model", context_window=8192)
"""The session configuration every builder commits with unless told otherwise."""

INITIAL_FRAME = AgentFrame("frame-0", "initial")


def message(node_id: str, parent_id: str | None, role: str = "user", content: str | None = None) -> Node:
    """A ``message`` node with a deterministic timestamp."""
    body = {"role": role, "content": content if content is not None else f"{role} says {node_id}"}
    return Node(node_id, parent_id, "message", body, created_at=1_700_000_000.0)


def event(node_id: str, parent_id: str | None, body: Any = None) -> Node:
    """An ``event`` node holding ``body`` (any msgpack-able value)."""
    return Node(node_id, parent_id, "event", body, created_at=1_700_000_000.5)


def chain(*node_ids: str, parent_id: str | None = None) -> tuple[Node, ...]:
    """Message nodes each under the previous one (the first under ``parent_id``)."""
    nodes = []
    for node_id in node_ids:
        nodes.append(message(node_id, parent_id))
        parent_id = node_id
    return tuple(nodes)


def usage(source: str, model: str, input_tokens: int = 0, output_tokens: int = 0) -> LedgerEntry:
    """A ledger delta."""
    return LedgerEntry(source, model, TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens))


@attrs.define
class SessionWriter:
    """Commits to one store and remembers the head revision, so a test states only what changes."""

    store: SessionStore
    revision: int | None = None
    leaf: str | None = None

    def commit(
        self,
        graph: GraphDelta | None = None,
        *,
        checkpoint: HydratedCheckpoint | None = None,
        usage_deltas: Iterable[LedgerEntry] = (),
        frames: Sequence[AgentFrame] = (INITIAL_FRAME,),
        config: SessionConfig = CONFIG,
    ) -> CommitResult:
        """Commit ``graph`` (default: no new nodes) on top of the last revision this writer saw."""
        delta = graph if graph is not None else Unchanged(self.leaf)
        commit = Commit(
            session_id=self.store.session_id,
            expected_head_revision=self.revision,
            config=config,
            graph=delta,
            checkpoint=checkpoint if checkpoint is not None else HydratedCheckpoint(),
            usage_deltas=tuple(usage_deltas),
            agent_frames=tuple(frames),
            current_agent_frame_id=frames[-1].frame_id if frames else None,
        )
        result = self.store.commit(commit)
        self.revision = result.head_revision
        self.leaf = delta.graph.leaf_node_id if isinstance(delta, ReplaceFull) else delta.leaf_node_id
        return result

    def append(self, *nodes: Node, leaf: str | None = None, **kwargs: Any) -> CommitResult:
        """Commit ``Append(nodes)`` moving the leaf to ``leaf`` (default: the last node)."""
        target = leaf if leaf is not None else (nodes[-1].node_id if nodes else self.leaf)
        return self.commit(Append(tuple(nodes), target), **kwargs)
