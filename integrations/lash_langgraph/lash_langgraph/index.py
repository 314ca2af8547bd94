"""What the adapter derives from a session's nodes to answer LangGraph's questions (no I/O).

Built once when a session is opened and extended with each node the saver commits, so that
``get_tuple``/``put`` cost no more than the channels they touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import attrs
from langgraph.checkpoint.base import writes_sort_key

from lash.model import Node
from lash_langgraph.records import (
    CHECKPOINT_TYPE,
    EMPTY,
    THREAD_TYPE,
    WRITES_TYPE,
    StoredCheckpoint,
    StoredWrite,
    StoredWrites,
    Typed,
    decode_checkpoint,
    decode_writes,
    node_type,
)

WriteKey = tuple[str, int]
ValueKey = tuple[str, str | int | float]


@attrs.define
class CheckpointIndex:
    """Checkpoints, pending writes and channel values of one ``(thread, namespace)`` session."""

    thread_node_id: str | None = None
    checkpoints: dict[str, StoredCheckpoint] = attrs.field(factory=dict)
    node_ids: dict[str, str] = attrs.field(factory=dict)
    """Checkpoint id → its node."""
    tails: dict[str, str] = attrs.field(factory=dict)
    """Checkpoint id → the newest node of its chain (itself or its last writes node): where children attach."""
    writes: dict[str, dict[WriteKey, StoredWrite]] = attrs.field(factory=dict)
    introduced: dict[ValueKey, list[str]] = attrs.field(factory=dict)
    """``(channel, version)`` → ids of the checkpoints whose node holds that value."""

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node]) -> CheckpointIndex:
        index = cls()
        for node in nodes:
            index.add(node)
        return index

    def add(self, node: Node) -> None:
        """Account for one node (in insertion order); nodes that are not the adapter's are ignored."""
        kind = node_type(node)
        if kind == THREAD_TYPE:
            self.thread_node_id = self.thread_node_id or node.node_id
        elif kind == CHECKPOINT_TYPE:
            stored = decode_checkpoint(node)
            cid = stored.checkpoint_id
            self.checkpoints[cid] = stored
            self.node_ids[cid] = node.node_id
            self.tails[cid] = node.node_id
            for channel, value in stored.values.items():
                holders = self.introduced.setdefault((channel, value.version), [])
                if cid not in holders:
                    holders.append(cid)
        elif kind == WRITES_TYPE:
            stored_writes = decode_writes(node)
            cid = stored_writes.checkpoint_id
            existing = self.writes.setdefault(cid, {})
            for write in self.unseen(stored_writes).writes:
                existing[(write.task_id, write.idx)] = write
            self.tails[cid] = node.node_id

    # -- questions ------------------------------------------------------------------------

    def latest_id(self) -> str | None:
        """The newest checkpoint (ids are time-ordered uuid6 strings), as LangGraph's savers define it."""
        return max(self.checkpoints, default=None)

    def ids_newest_first(self) -> list[str]:
        return sorted(self.checkpoints, reverse=True)

    def unseen(self, batch: StoredWrites) -> StoredWrites:
        """``batch`` without writes already stored: a ``(task_id, idx)`` is kept once, special channels replaced."""
        existing = self.writes.get(batch.checkpoint_id, {})
        return attrs.evolve(
            batch, writes=tuple(w for w in batch.writes if w.idx < 0 or (w.task_id, w.idx) not in existing)
        )

    def ordered_writes(self, checkpoint_id: str) -> list[StoredWrite]:
        """Pending writes of a checkpoint in LangGraph's ``writes_sort_key`` order."""
        stored = self.writes.get(checkpoint_id, {})
        return sorted(stored.values(), key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))

    def lineage(self, checkpoint_id: str) -> Iterator[str]:
        """The checkpoint and its LangGraph ancestors stored here, newest first."""
        seen: set[str] = set()
        current: str | None = checkpoint_id
        while current is not None and current in self.checkpoints and current not in seen:
            seen.add(current)
            yield current
            current = self.checkpoints[current].parent_id

    def value_sources(self, checkpoint_id: str, channel_versions: Mapping[str, str | int | float]) -> dict[str, str]:
        """For each channel, the checkpoint whose node holds the value of its version.

        Versions are unique per thread with :meth:`LashSaver.get_next_version`; when a version
        was written on several branches anyway, the one on this checkpoint's lineage wins.
        """
        sources: dict[str, str] = {}
        lineage: set[str] | None = None
        for channel, version in channel_versions.items():
            holders = self.introduced.get((channel, version))
            if not holders:
                continue
            if len(holders) > 1:
                lineage = lineage if lineage is not None else set(self.lineage(checkpoint_id))
                on_path = [h for h in holders if h in lineage]
                holders = on_path or holders
            sources[channel] = holders[-1]
        return sources

    def resolve(self, checkpoint_id: str, channel_versions: Mapping[str, str | int | float]) -> dict[str, Typed]:
        """Serialized values of the channels at ``channel_versions`` (empty channels left out)."""
        out: dict[str, Typed] = {}
        for channel, source in self.value_sources(checkpoint_id, channel_versions).items():
            typed = self.checkpoints[source].values[channel].typed
            if typed != EMPTY:
                out[channel] = typed
        return out
