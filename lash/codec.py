"""One cattrs converter and msgpack: records to bytes and back, with a schema version.

Every stored record is the msgpack array ``[schema_version, unstructured_record]``. Reading
a version newer than :data:`SCHEMA_VERSION` raises :class:`~lash.errors.SchemaVersionError`;
bytes that are not such an array raise :class:`~lash.errors.CorruptRecordError`. Structure
and unstructure happen here, at the storage edge, and nowhere in the middle of the code.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs
import msgpack
from cattrs.preconf.msgpack import make_converter

from lash.errors import CorruptRecordError, SchemaVersionError, SerializationError
from lash.graph import SessionGraph
from lash.model import Node

SCHEMA_VERSION = 1
"""Version written into every record; bump it (and add a migration) when a record changes shape."""

T = TypeVar("T")

converter: cattrs.Converter = make_converter(forbid_extra_keys=False)
"""The converter every lash record goes through."""

converter.register_unstructure_hook(
    SessionGraph,
    lambda g: {"nodes": [converter.unstructure(n) for n in g.nodes.values()], "leaf_node_id": g.leaf_node_id},
)
converter.register_structure_hook(
    SessionGraph,
    lambda d, _: SessionGraph.from_nodes((converter.structure(n, Node) for n in d["nodes"]), d["leaf_node_id"]),
)


def pack(value: Any) -> bytes:
    """msgpack-encode a plain value, raising a lash error for what msgpack cannot hold."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"value cannot be stored: {exc}") from exc


def unpack(data: bytes, what: str = "record") -> Any:
    """msgpack-decode, raising :class:`CorruptRecordError` on malformed bytes."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CorruptRecordError(what, f"not valid msgpack ({exc})") from exc


def encode(record: Any) -> bytes:
    """Bytes for ``record``, tagged with :data:`SCHEMA_VERSION`."""
    return pack([SCHEMA_VERSION, converter.unstructure(record)])


def decode(data: bytes, cls: type[T], what: str | None = None) -> T:
    """The ``cls`` record stored in ``data``; checks the schema version first."""
    label = what or cls.__name__
    raw = unpack(data, label)
    if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int)):
        raise CorruptRecordError(label, "not a versioned lash record")
    version, payload = raw
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(version, SCHEMA_VERSION, label)
    try:
        return converter.structure(payload, cls)
    except Exception as exc:
        raise CorruptRecordError(label, f"does not match the {cls.__name__} record ({exc})") from exc


def to_plain(record: Any) -> Any:
    """Unstructure a record into plain dicts/lists (CLI --json output, export)."""
    return converter.unstructure(record)


def from_plain(data: Any, cls: type[T]) -> T:
    """Structure plain data into ``cls``."""
    return converter.structure(data, cls)
