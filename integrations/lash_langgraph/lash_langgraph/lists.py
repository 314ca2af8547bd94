"""List channels stored as the items they appended (format 2 deltas), and rebuilt from them.

A LangGraph ``messages`` channel grows by a few items per step, and every step gives it a new
version; stored whole, a thread of n turns would hold n copies of a list of up to 2n messages.
When a new version of a list extends the list of the parent checkpoint's version, the
checkpoint node stores a :class:`~lash_langgraph.records.ListDelta` instead: that base and the
new items, each serialized with the saver's serializer on its own.

A delta is written only when reading it back gives what LangGraph would get from the whole
list: the value is a plain ``list``, its prefix equals (``==``) the base as decoded from what is
stored, and every new item comes back from ``serde`` equal and of the same type. Anything else
(a tuple that would come back as a list, an object without ``__eq__``, a list that dropped or
changed items) is stored whole, as in format 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.serde.base import SerializerProtocol

from lash.errors import SerializationError
from lash_langgraph.index import CheckpointIndex, ListValue
from lash_langgraph.records import EMPTY, ListDelta, Typed, Version, dump


def plan_deltas(
    serde: SerializerProtocol,
    index: CheckpointIndex,
    checkpoint: Checkpoint,
    new_versions: Mapping[str, Version],
    parent_id: str | None,
) -> dict[str, ListDelta]:
    """The changed channels of ``checkpoint`` to store as deltas of its parent's lists (the rest go whole)."""
    values = checkpoint["channel_values"]
    lists = [ch for ch in new_versions if type(values.get(ch)) is list]
    if not lists or parent_id is None or parent_id not in index.checkpoints:
        return {}
    parent_versions = serde.loads_typed(index.checkpoints[parent_id].checkpoint)["channel_versions"]
    bases = index.value_sources(parent_id, {ch: parent_versions[ch] for ch in lists if ch in parent_versions})
    deltas: dict[str, ListDelta] = {}
    for channel, holder in bases.items():
        delta = _delta(serde, index, holder, channel, values[channel], checkpoint["id"])
        if delta is not None:
            deltas[channel] = delta
    return deltas


def _delta(
    serde: SerializerProtocol, index: CheckpointIndex, holder: str, channel: str, value: list[Any], checkpoint_id: str
) -> ListDelta | None:
    """``value`` as a delta of ``channel``'s list in ``holder``'s node, or None if it must be stored whole."""
    base = _decoded(serde, index, holder, channel)
    if base is None or len(value) < len(base) or value[: len(base)] != base:
        return None
    items: list[Typed] = []
    decoded: list[Any] = []
    for item in value[len(base) :]:
        try:
            typed = dump(serde, item, f"an item of channel {channel!r} of checkpoint {checkpoint_id}")
        except SerializationError:
            return None  # stored whole, which raises if the list cannot be stored at all
        back = serde.loads_typed(typed)
        if type(back) is not type(item) or back != item:
            return None
        items.append(typed)
        decoded.append(back)
    index.decoded.put((checkpoint_id, channel), [*base, *decoded])
    return ListDelta(holder, index.checkpoints[holder].values[channel].version, len(base), tuple(items))


def _decoded(serde: SerializerProtocol, index: CheckpointIndex, holder: str, channel: str) -> list[Any] | None:
    """``channel``'s value in ``holder``'s node, decoded for comparisons only (never handed out); None if no list."""
    found = index.decoded.get((holder, channel))
    if found is not None:
        return found
    content = index.checkpoints[holder].values[channel].content
    if isinstance(content, ListDelta):
        value = rebuild(serde, index, index.list_value(holder, channel))
    elif content == EMPTY:
        return None
    else:
        value = serde.loads_typed(content)
    if type(value) is not list:
        return None
    index.decoded.put((holder, channel), value)
    return value


def loads(serde: SerializerProtocol, index: CheckpointIndex, stored: Typed | ListValue) -> Any:
    """A channel value as :meth:`CheckpointIndex.resolve` found it, decoded afresh (callers may mutate it)."""
    if isinstance(stored, ListValue):
        return rebuild(serde, index, stored)
    return serde.loads_typed(stored)


def rebuild(serde: SerializerProtocol, index: CheckpointIndex, value: ListValue) -> list[Any]:
    """The list a chain of deltas stands for: its whole base decoded, then each appended item."""
    head = serde.loads_typed(value.head)
    if type(head) is not list or len(head) != value.head_length:
        found = f"a list of {len(head)} items" if type(head) is list else type(head).__name__
        raise index.corrupt(
            value.head_checkpoint_id, f"a delta extends {value.head_length} items of its base, which holds {found}"
        )
    head.extend(serde.loads_typed(item) for item in value.items)
    return head
