"""The codec stores every record losslessly and refuses what it cannot read."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lash import codec
from lash.errors import CorruptRecordError, SchemaVersionError
from lash.graph import SessionGraph
from lash.model import (
    AgentFrame,
    Checkpoint,
    Head,
    LedgerEntry,
    Node,
    PluginSnapshot,
    SessionConfig,
    TokenUsage,
    ToolState,
    TurnState,
    blob_ref_for,
)

# --- strategies ------------------------------------------------------------------------------

texts = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | texts
    | st.binary(max_size=16)
)
bodies = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)
"""Any msgpack-able value: what a node body, plugin snapshot entry or turn option may hold."""

counts = st.integers(min_value=0, max_value=2**40)
usages = st.builds(TokenUsage, counts, counts, counts, counts, counts)
ledgers = st.lists(st.builds(LedgerEntry, texts, texts, usages), max_size=5).map(tuple)
refs = st.binary(max_size=8).map(blob_ref_for)
turn_states = st.builds(
    TurnState,
    st.integers(min_value=0, max_value=10_000),
    usages,
    st.none() | usages,
    st.dictionaries(texts, bodies, max_size=3),
)
tool_states = st.builds(
    ToolState,
    generation=st.integers(min_value=0, max_value=2**31),
    tools=st.lists(st.dictionaries(texts, bodies, max_size=3), max_size=3).map(tuple),
)
plugin_snapshots = st.builds(
    PluginSnapshot, st.integers(min_value=0, max_value=2**31), st.dictionaries(texts, bodies, max_size=3)
)
checkpoints = st.builds(
    Checkpoint,
    turn_states,
    st.none() | refs,
    st.none() | refs,
    st.none() | st.integers(min_value=0, max_value=100),
    st.none() | refs,
    st.none() | st.integers(min_value=0, max_value=100),
)
frames = st.builds(
    AgentFrame,
    texts,
    st.sampled_from(["initial", "compaction"]),
    st.lists(texts, max_size=3).map(tuple),
    st.none() | texts,
    st.dictionaries(texts, bodies, max_size=2),
)
configs = st.builds(
    SessionConfig, texts, texts, st.integers(min_value=0, max_value=2**31), texts, texts, st.none() | texts
)


@st.composite
def graphs(draw: st.DrawFn) -> SessionGraph:
    """A graph with branches: each node hangs under a random earlier node (or is a root)."""
    graph = SessionGraph()
    for i in range(draw(st.integers(min_value=0, max_value=10))):
        parent = draw(st.none() | st.sampled_from(list(graph.nodes))) if graph.nodes else None
        graph.append(
            draw(st.sampled_from(["message", "event", "frame", "plugin:memory"])),
            draw(scalars | st.dictionaries(texts, scalars, max_size=3)),  # deep bodies: see the node test
            parent,
            node_id=f"n{i}",
            created_at=draw(st.floats(min_value=0, max_value=2e9)),
        )
    graph.leaf_node_id = draw(st.none() | st.sampled_from(list(graph.nodes))) if graph.nodes else None
    return graph


heads = st.builds(
    Head,
    st.integers(min_value=1, max_value=2**40),
    configs,
    st.none() | texts,
    refs,
    checkpoints,
    st.lists(frames, max_size=3).map(tuple),
    st.none() | texts,
    st.floats(min_value=0, max_value=2e9),
)


def round_trip(record: Any) -> Any:
    return codec.decode(codec.encode(record), type(record))


# --- round trips -----------------------------------------------------------------------------


@given(graphs())
def test_graph_round_trips_with_order_branches_and_leaf(graph: SessionGraph) -> None:
    again = round_trip(graph)
    assert again == graph
    assert list(again.nodes) == list(graph.nodes)
    assert again.leaf_node_id == graph.leaf_node_id


@given(st.builds(Node, texts, st.none() | texts, texts, bodies, st.floats(allow_nan=False)))
def test_node_body_of_any_msgpack_value_round_trips(node: Node) -> None:
    assert round_trip(node) == node


@given(ledgers)
def test_ledger_entries_round_trip(ledger: tuple[LedgerEntry, ...]) -> None:
    assert tuple(round_trip(entry) for entry in ledger) == ledger


@given(checkpoints)
def test_checkpoint_manifest_round_trips(checkpoint: Checkpoint) -> None:
    assert round_trip(checkpoint) == checkpoint


@given(heads)
def test_head_round_trips(head: Head) -> None:
    assert round_trip(head) == head


@given(tool_states)
def test_tool_state_round_trips(state: ToolState) -> None:
    assert round_trip(state) == state


@given(plugin_snapshots)
def test_plugin_snapshot_round_trips(snapshot: PluginSnapshot) -> None:
    assert round_trip(snapshot) == snapshot


# --- refusals --------------------------------------------------------------------------------


def test_record_from_newer_schema_raises_schema_version_error() -> None:
    data = msgpack.packb([codec.SCHEMA_VERSION + 1, codec.to_plain(TokenUsage(1))])
    with pytest.raises(SchemaVersionError) as info:
        codec.decode(data, TokenUsage)
    assert (info.value.found, info.value.supported) == (codec.SCHEMA_VERSION + 1, codec.SCHEMA_VERSION)


@pytest.mark.parametrize(
    "data",
    [b"\xc1", b"\x92\x01", b"", b"\xa3abc" + b"trailing"],
    ids=["reserved-byte", "truncated-array", "empty", "trailing-bytes"],
)
def test_corrupt_msgpack_raises_corrupt_record_error(data: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        codec.decode(data, TokenUsage)


def test_unversioned_msgpack_raises_corrupt_record_error() -> None:
    with pytest.raises(CorruptRecordError):
        codec.decode(msgpack.packb({"input_tokens": 1}), TokenUsage)


def test_payload_of_the_wrong_shape_raises_corrupt_record_error() -> None:
    with pytest.raises(CorruptRecordError) as info:
        codec.decode(codec.encode(TokenUsage(1)), Node, "node n1")
    assert "node n1" in str(info.value)


# --- compressed records ----------------------------------------------------------------------

LONG_NODE = Node("n1", None, "message", {"role": "assistant", "content": "the quick brown fox. " * 100}, 1.5)


def test_compressed_record_decodes_to_the_same_record_and_is_smaller() -> None:
    plain = codec.encode(LONG_NODE)
    packed = codec.compress_record(plain, 1)
    assert packed.startswith(codec.COMPRESSED_MAGIC) and len(packed) < len(plain) // 2
    assert codec.decode(packed, Node) == LONG_NODE


@pytest.mark.parametrize(
    "data",
    [codec.pack([1, "hi"]), bytes(range(256)), codec.ENCRYPTED_MAGIC + b"x" * 500],
    ids=["too-small-to-gain", "incompressible", "sealed"],
)
def test_compress_record_keeps_bytes_it_cannot_shrink_as_they_are(data: bytes) -> None:
    assert codec.compress_record(data, 6) == data


def test_damaged_compressed_record_raises_corrupt_record_error() -> None:
    packed = codec.compress_record(codec.encode(LONG_NODE), 1)
    with pytest.raises(CorruptRecordError, match="does not decompress"):
        codec.decode(packed[:-8], Node, "node n1")
