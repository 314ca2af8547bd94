"""The lash nodes a LangGraph thread is stored as, and their format version.

Three node kinds, each a ``plugin:`` node whose msgpack body carries ``format``:

* ``plugin:langgraph.thread`` — the root of every session: the thread id and namespace.
* ``plugin:langgraph.checkpoint`` — one checkpoint: its id, its LangGraph parent's id, the
  checkpoint record without channel values, the metadata, and the values of the channels this
  checkpoint gave a new version (``new_versions``). Unchanged channels are not copied: they are
  read from the earlier checkpoint node that introduced their version. A list that extends the
  list of an earlier stored version (an append-only ``messages`` channel) is stored as a
  :class:`ListDelta`: that base and only the items it added (format 2).
* ``plugin:langgraph.writes`` — one ``put_writes`` call: pending writes of one task for one checkpoint.

Values are serialized with the saver's LangGraph serializer (``serde.dumps_typed``) and stored as
``[type, bytes]``; a delta stores each added item that way. A body whose ``format`` is newer
than :data:`FORMAT_VERSION` raises :class:`~lash.SchemaVersionError`; nothing is guessed.
Format 1 bodies (no deltas) are read as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from langgraph.checkpoint.base import WRITES_IDX_MAP, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.serde.base import SerializerProtocol

from lash.errors import CorruptRecordError, SchemaVersionError, SerializationError
from lash.model import Node

FORMAT_VERSION = 2
"""Format of the node bodies this adapter writes; newer ones are refused on read.

1: every changed channel stored whole. 2: adds ``deltas`` (lists stored as the items they added).
"""

THREAD_TYPE = "langgraph.thread"
CHECKPOINT_TYPE = "langgraph.checkpoint"
WRITES_TYPE = "langgraph.writes"
_KINDS = {f"plugin:{t}": t for t in (THREAD_TYPE, CHECKPOINT_TYPE, WRITES_TYPE)}

Typed = tuple[str, bytes]
"""A value as ``serde.dumps_typed`` returns it."""

Version = str | int | float
"""A channel version as LangGraph hands it to the saver."""

EMPTY: Typed = ("empty", b"")
"""A channel given a new version without a value (LangGraph's own savers store the same marker)."""


@attrs.frozen
class ListDelta:
    """A list stored as the list of an earlier version plus the items appended to it.

    ``base_checkpoint_id`` is the checkpoint whose node holds the base (``base_version`` of the
    same channel), ``base_length`` its length: both are checked when the list is rebuilt.
    """

    base_checkpoint_id: str
    base_version: Version
    base_length: int
    items: tuple[Typed, ...]


@attrs.frozen
class StoredValue:
    """One channel value, stored once for the version that introduced it: whole, or as a :class:`ListDelta`."""

    version: Version
    content: Typed | ListDelta


@attrs.frozen
class StoredCheckpoint:
    """A checkpoint node's body: everything but the values of unchanged channels."""

    checkpoint_id: str
    parent_id: str | None
    checkpoint: Typed
    metadata: Typed
    values: Mapping[str, StoredValue]

    def body(self) -> dict[str, Any]:
        whole: dict[str, list[Any]] = {}
        deltas: dict[str, list[Any]] = {}
        for channel, value in self.values.items():
            content = value.content
            if isinstance(content, ListDelta):
                deltas[channel] = [
                    value.version,
                    content.base_checkpoint_id,
                    content.base_version,
                    content.base_length,
                    [list(item) for item in content.items],
                ]
            else:
                whole[channel] = [value.version, *content]
        body = {
            "format": FORMAT_VERSION,
            "id": self.checkpoint_id,
            "parent": self.parent_id,
            "checkpoint": list(self.checkpoint),
            "metadata": list(self.metadata),
            "values": whole,
        }
        if deltas:
            body["deltas"] = deltas
        return body


@attrs.frozen
class StoredWrite:
    """One pending write: ``idx`` follows LangGraph (special channels have negative indices)."""

    task_id: str
    idx: int
    channel: str
    typed: Typed
    task_path: str


@attrs.frozen
class StoredWrites:
    """A writes node's body: the writes of one task for one checkpoint."""

    checkpoint_id: str
    writes: tuple[StoredWrite, ...]

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "checkpoint": self.checkpoint_id,
            "writes": [[w.task_id, w.idx, w.channel, *w.typed, w.task_path] for w in self.writes],
        }


def thread_body(thread_id: str, checkpoint_ns: str) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "thread_id": thread_id, "checkpoint_ns": checkpoint_ns}


def dump(serde: SerializerProtocol, value: Any, what: str) -> Typed:
    """``serde.dumps_typed(value)``, or :class:`~lash.SerializationError` naming ``what``."""
    try:
        type_, data = serde.dumps_typed(value)
    except Exception as exc:
        raise SerializationError(f"{what} cannot be serialized ({type(value).__name__}): {exc}") from exc
    return type_, bytes(data)


def encode_checkpoint(
    serde: SerializerProtocol,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: Mapping[str, Version],
    parent_id: str | None,
    deltas: Mapping[str, ListDelta],
) -> StoredCheckpoint:
    """Serialize everything before any write, so a value that cannot be stored fails first.

    ``deltas`` are the channels stored as :class:`ListDelta` (see :mod:`lash_langgraph.lists`);
    every other changed channel is stored whole.
    """
    checkpoint_id = checkpoint["id"]
    record = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    channel_values = checkpoint["channel_values"]
    values = {
        channel: StoredValue(
            version,
            deltas[channel]
            if channel in deltas
            else dump(serde, channel_values[channel], f"channel {channel!r} of checkpoint {checkpoint_id}")
            if channel in channel_values
            else EMPTY,
        )
        for channel, version in new_versions.items()
    }
    return StoredCheckpoint(
        checkpoint_id=checkpoint_id,
        parent_id=parent_id,
        checkpoint=dump(serde, record, f"checkpoint {checkpoint_id}"),
        metadata=dump(serde, metadata, f"metadata of checkpoint {checkpoint_id}"),
        values=values,
    )


def encode_writes(
    serde: SerializerProtocol, checkpoint_id: str, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
) -> StoredWrites:
    return StoredWrites(
        checkpoint_id,
        tuple(
            StoredWrite(
                task_id,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                dump(serde, value, f"write to channel {channel!r} by task {task_id!r}"),
                task_path,
            )
            for idx, (channel, value) in enumerate(writes)
        ),
    )


def node_type(node: Node) -> str | None:
    """The adapter's type of ``node`` (checked for format), or None for nodes that are not the adapter's."""
    node_type_ = _KINDS.get(node.kind)
    if node_type_ is None:
        return None
    body = node.body
    found = body.get("format") if isinstance(body, dict) else None
    if not isinstance(found, int):
        raise CorruptRecordError(f"{node.kind} node {node.node_id}", "body has no format version")
    if found > FORMAT_VERSION:
        raise SchemaVersionError(found, FORMAT_VERSION, f"LangGraph {node_type_} node {node.node_id} (lash-langgraph)")
    return node_type_


def decode_checkpoint(node: Node) -> StoredCheckpoint:
    body = node.body
    try:
        return StoredCheckpoint(
            checkpoint_id=body["id"],
            parent_id=body["parent"],
            checkpoint=_typed(body["checkpoint"]),
            metadata=_typed(body["metadata"]),
            values={
                **{ch: StoredValue(v[0], _typed(v[1:])) for ch, v in body["values"].items()},
                **{ch: StoredValue(v[0], _delta(v[1:])) for ch, v in body.get("deltas", {}).items()},
            },
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CorruptRecordError(f"checkpoint node {node.node_id}", f"{type(exc).__name__}: {exc}") from exc


def decode_writes(node: Node) -> StoredWrites:
    body = node.body
    try:
        return StoredWrites(
            body["checkpoint"],
            tuple(StoredWrite(w[0], w[1], w[2], _typed(w[3:5]), w[5]) for w in body["writes"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptRecordError(f"writes node {node.node_id}", f"{type(exc).__name__}: {exc}") from exc


def _delta(fields: Sequence[Any]) -> ListDelta:
    base_checkpoint_id, base_version, base_length, items = fields
    if not isinstance(base_checkpoint_id, str) or not isinstance(base_length, int) or base_length < 0:
        raise ValueError("a delta must be [version, base checkpoint id, base version, base length >= 0, items]")
    return ListDelta(base_checkpoint_id, base_version, base_length, tuple(_typed(item) for item in items))


def _typed(pair: Sequence[Any]) -> Typed:
    type_, data = pair
    if not isinstance(type_, str) or not isinstance(data, bytes):
        raise TypeError("a value must be [type: str, data: bytes]")
    return type_, data
