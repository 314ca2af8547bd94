"""Dropping checkpoints from a session's graph (``prune``, ``delete_for_runs``) without breaking survivors.

A surviving checkpoint may read unchanged channels from a node that is dropped: those values
are copied into the survivor's own node first. A list stored as a delta of a dropped
checkpoint's list is stored whole instead. Survivors hang under their nearest surviving
ancestor, so the LangGraph lineage stays a lash branch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import attrs
from langgraph.checkpoint.serde.base import SerializerProtocol

from lash.graph import SessionGraph
from lash.model import Node
from lash_langgraph.index import CheckpointIndex
from lash_langgraph.lists import rebuild
from lash_langgraph.records import (
    CHECKPOINT_TYPE,
    THREAD_TYPE,
    WRITES_TYPE,
    ListDelta,
    StoredValue,
    Version,
    decode_checkpoint,
    decode_writes,
    dump,
    node_type,
)

ChannelVersions = Mapping[str, Version]


def graph_keeping(
    graph: SessionGraph,
    index: CheckpointIndex,
    keep: Collection[str],
    channel_versions: Callable[[str], ChannelVersions],
    serde: SerializerProtocol,
) -> SessionGraph:
    """``graph`` with only the checkpoints in ``keep`` (and their pending writes)."""
    kept: dict[str, Node] = {}
    for node in graph.nodes.values():
        kind = node_type(node)
        if kind == THREAD_TYPE:
            kept[node.node_id] = node
        elif kind == CHECKPOINT_TYPE:
            checkpoint_id = decode_checkpoint(node).checkpoint_id
            if checkpoint_id in keep and index.node_ids[checkpoint_id] == node.node_id:
                kept[node.node_id] = _self_contained(node, index, keep, channel_versions(checkpoint_id), serde)
        elif kind == WRITES_TYPE and decode_writes(node).checkpoint_id in keep:
            kept[node.node_id] = node
    rebuilt = SessionGraph()
    for node in kept.values():
        rebuilt.add(attrs.evolve(node, parent_id=_nearest_kept(graph, node.parent_id, kept)))
    leaf = graph.leaf_node_id
    if leaf not in kept:
        latest = max((c for c in keep if c in index.checkpoints), default=None)
        leaf = index.tails[latest] if latest is not None and index.tails[latest] in kept else index.thread_node_id
        leaf = _nearest_kept(graph, leaf, kept)
    rebuilt.leaf_node_id = leaf
    return rebuilt


def _self_contained(
    node: Node, index: CheckpointIndex, keep: Collection[str], versions: ChannelVersions, serde: SerializerProtocol
) -> Node:
    stored = decode_checkpoint(node)
    sources = {channel: stored.checkpoint_id for channel in stored.values}
    for channel, source in index.value_sources(stored.checkpoint_id, versions).items():
        if source not in keep:
            sources.setdefault(channel, source)
    values: dict[str, StoredValue] = {}
    for channel, source in sources.items():
        value = index.checkpoints[source].values[channel] if source != stored.checkpoint_id else stored.values[channel]
        if isinstance(value.content, ListDelta) and value.content.base_checkpoint_id not in keep:
            whole = rebuild(serde, index, index.list_value(source, channel))
            value = StoredValue(value.version, dump(serde, whole, f"channel {channel!r} of checkpoint {source}"))
        values[channel] = value
    if values == dict(stored.values):
        return node
    return attrs.evolve(node, body=attrs.evolve(stored, values=values).body())


def _nearest_kept(graph: SessionGraph, node_id: str | None, kept: Mapping[str, Node]) -> str | None:
    while node_id is not None and node_id not in kept:
        parent = graph.nodes.get(node_id)
        node_id = parent.parent_id if parent is not None else None
    return node_id
