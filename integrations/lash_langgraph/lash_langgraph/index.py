"""What the adapter derives from a session's nodes to answer LangGraph's questions (no I/O).

Built once when a session is opened and extended with each node the saver commits, so that
``get_tuple``/``put`` cost no more than the channels they touch. Values stay serialized here:
the index only says which stored bytes make up a checkpoint's values (for a list stored as
deltas, which items of which nodes); decoding them is :mod:`lash_langgraph.lists`'s job.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs
from langgraph.checkpoint.base import writes_sort_key

from lash.errors import CorruptRecordError
from lash.model import Node
from lash_langgraph.records import (
    CHECKPOINT_TYPE,
    EMPTY,
    THREAD_TYPE,
    WRITES_TYPE,
    ListDelta,
    StoredCheckpoint,
    StoredValue,
    StoredWrite,
    StoredWrites,
    Typed,
    Version,
    decode_checkpoint,
    decode_writes,
    node_type,
)

K = TypeVar("K")
V = TypeVar("V")

WriteKey = tuple[str, int]
ValueKey = tuple[str, Version]
ListKey = tuple[str, str]
"""``(checkpoint id, channel)``: a list value as the node of that checkpoint stores it."""

REBUILT_LISTS = 64
"""Lists rebuilt from deltas kept per session (tuples of references to stored bytes: small)."""
DECODED_LISTS = 8
"""Decoded lists kept per session, to tell whether the next version of a list extends it."""


class Lru(Generic[K, V]):
    """A mapping that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


@attrs.frozen
class ListValue:
    """A list rebuilt from its deltas, still serialized: a list stored whole, then the items appended to it."""

    head: Typed
    head_checkpoint_id: str
    head_length: int
    """The length the deltas expect of ``head``; checked once it is decoded."""
    items: tuple[Typed, ...]


@attrs.define
class CheckpointIndex:
    """Checkpoints, pending writes and channel values of one ``(thread, namespace)`` session."""

    thread_node_id: str | None = None
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoints: dict[str, StoredCheckpoint] = attrs.field(factory=dict)
    node_ids: dict[str, str] = attrs.field(factory=dict)
    """Checkpoint id → its node."""
    tails: dict[str, str] = attrs.field(factory=dict)
    """Checkpoint id → the newest node of its chain (itself or its last writes node): where children attach."""
    writes: dict[str, dict[WriteKey, StoredWrite]] = attrs.field(factory=dict)
    introduced: dict[ValueKey, list[str]] = attrs.field(factory=dict)
    """``(channel, version)`` → ids of the checkpoints whose node holds that value."""
    rebuilt: Lru[ListKey, ListValue] = attrs.field(factory=lambda: Lru(REBUILT_LISTS))
    decoded: Lru[ListKey, list[Any]] = attrs.field(factory=lambda: Lru(DECODED_LISTS))
    """Decoded lists that nothing outside the saver holds (see :func:`lash_langgraph.lists.plan_deltas`)."""

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
            if self.thread_node_id is None:
                self.thread_node_id = node.node_id
                self.thread_id = node.body.get("thread_id")
                self.checkpoint_ns = node.body.get("checkpoint_ns") or ""
        elif kind == CHECKPOINT_TYPE:
            stored = decode_checkpoint(node)
            cid = stored.checkpoint_id
            if cid in self.checkpoints:  # stored again: lists rebuilt through the old node are stale
                self.rebuilt.clear()
                self.decoded.clear()
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

    def value_sources(self, checkpoint_id: str, channel_versions: Mapping[str, Version]) -> dict[str, str]:
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

    def resolve(self, checkpoint_id: str, channel_versions: Mapping[str, Version]) -> dict[str, Typed | ListValue]:
        """Serialized values of the channels at ``channel_versions`` (empty channels left out)."""
        out: dict[str, Typed | ListValue] = {}
        for channel, source in self.value_sources(checkpoint_id, channel_versions).items():
            content = self.checkpoints[source].values[channel].content
            if isinstance(content, ListDelta):
                out[channel] = self.list_value(source, channel)
            elif content != EMPTY:
                out[channel] = content
        return out

    def list_value(self, checkpoint_id: str, channel: str) -> ListValue:
        """The list ``checkpoint_id``'s node stores for ``channel`` as a delta, followed back to a whole list.

        Iterative, and it stops at the nearest list rebuilt before, so reading the next
        checkpoint of a thread costs only the items it added.
        """
        chain: list[ListDelta] = []
        holder, version = checkpoint_id, self.checkpoints[checkpoint_id].values[channel].version
        while (found := self.rebuilt.get((holder, channel))) is None:
            content = self._stored(checkpoint_id, holder, channel, version).content
            if not isinstance(content, ListDelta):
                if content == EMPTY:
                    raise self.corrupt(checkpoint_id, f"channel {channel!r} is a delta of an empty value ({holder})")
                found = ListValue(content, holder, chain[-1].base_length, ())
                break
            chain.append(content)
            if len(chain) > len(self.checkpoints):
                raise self.corrupt(checkpoint_id, f"the deltas of channel {channel!r} form a loop")
            holder, version = content.base_checkpoint_id, content.base_version
        items = list(found.items)
        for delta in reversed(chain):
            if delta.base_length != found.head_length + len(items):
                raise self.corrupt(
                    checkpoint_id,
                    f"a delta of channel {channel!r} extends {delta.base_length} items of checkpoint "
                    f"{delta.base_checkpoint_id}, which has {found.head_length + len(items)}",
                )
            items.extend(delta.items)
        rebuilt = attrs.evolve(found, items=tuple(items))
        self.rebuilt.put((checkpoint_id, channel), rebuilt)
        return rebuilt

    def _stored(self, checkpoint_id: str, holder: str, channel: str, version: Version) -> StoredValue:
        """The value ``holder``'s node stores for ``channel`` at ``version``; reading ``checkpoint_id`` needs it."""
        stored = self.checkpoints.get(holder)
        value = stored.values.get(channel) if stored is not None else None
        if value is None or value.version != version:
            raise self.corrupt(
                checkpoint_id,
                f"channel {channel!r} is stored as a delta of version {version!r} in checkpoint {holder}, "
                "which is not stored",
            )
        return value

    def corrupt(self, checkpoint_id: str, reason: str) -> CorruptRecordError:
        """The error for a value of ``checkpoint_id`` that cannot be rebuilt, naming the thread and namespace."""
        namespace = f" (namespace {self.checkpoint_ns!r})" if self.checkpoint_ns else ""
        return CorruptRecordError(f"LangGraph thread {self.thread_id!r}{namespace} checkpoint {checkpoint_id}", reason)
