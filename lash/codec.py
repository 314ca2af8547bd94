"""One cattrs converter and msgpack: records to bytes and back, with a schema version.

Every stored record is the msgpack array ``[schema_version, unstructured_record]``. Reading
a version newer than :data:`SCHEMA_VERSION` raises :class:`~lash.errors.SchemaVersionError`;
bytes that are not such an array raise :class:`~lash.errors.CorruptRecordError`. Structure
and unstructure happen here, at the storage edge, and nowhere in the middle of the code.
"""

from __future__ import annotations

import zlib
from typing import Any, TypeVar

import attrs
import cattrs
import msgpack
from cattrs.preconf.msgpack import make_converter

from lash.errors import CorruptRecordError, DecryptionError, SchemaVersionError, SerializationError
from lash.graph import SessionGraph
from lash.model import Node, PluginSnapshot, ToolState

SCHEMA_VERSION = 1
"""Version written into every record; bump it (and add a migration) when a record changes shape."""

ENCRYPTED_MAGIC = b"\xc1lash-aead"
"""How every record and blob sealed by :mod:`lash.encryption` starts. 0xc1 is never valid msgpack,
so no plaintext record starts like this, and reading encrypted data without a key fails clearly."""

COMPRESSED_MAGIC = b"\xc1lash-zlib"
"""How a record compressed by :func:`compress_record` starts (0xc1, like :data:`ENCRYPTED_MAGIC`, is never
msgpack). :func:`unpack` expands such records, so a backend may compress what it stores and every reader copes."""

T = TypeVar("T")

converter: cattrs.Converter = make_converter(forbid_extra_keys=True)
"""The converter every lash record goes through.

Strict, so that damaged data is reported instead of "repaired": an unknown key (a field
this lash would silently drop) or a value of the wrong type (``5`` for a str) is a
:class:`~lash.errors.CorruptRecordError`, never coerced. A newer lash that adds a field
bumps :data:`SCHEMA_VERSION`, which older ones refuse with :class:`SchemaVersionError`.
"""


def _exact(kind: type, *also: type) -> Any:
    def hook(value: Any, _: type) -> Any:
        if type(value) is kind:
            return value
        if also and type(value) in also:  # an int stored where a float belongs (Node(created_at=1))
            return kind(value)
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")

    return hook


for _kind, _also in ((str, ()), (int, ()), (bool, ()), (float, (int,))):
    converter.register_structure_hook(_kind, _exact(_kind, *_also))

converter.register_unstructure_hook(
    SessionGraph,
    lambda g: {"nodes": [converter.unstructure(n) for n in g.nodes.values()], "leaf_node_id": g.leaf_node_id},
)
converter.register_structure_hook(
    SessionGraph,
    lambda d, _: SessionGraph.from_nodes((converter.structure(n, Node) for n in d["nodes"]), d["leaf_node_id"]),
)


def _register_plain_record(cls: type) -> None:
    """Unstructure ``cls`` field by field without walking its values.

    For records whose fields already hold plain msgpack values (node bodies, tool specs,
    plugin entries): cattrs would otherwise dispatch on every nested dict and list, which
    costs milliseconds for a 64 KiB tool catalogue on every change.
    """
    names = tuple(field.name for field in attrs.fields(cls))
    converter.register_unstructure_hook(cls, lambda record: {name: getattr(record, name) for name in names})


for _plain in (Node, PluginSnapshot):
    _register_plain_record(_plain)


@attrs.frozen
class _StoredToolState:
    """The stored shape of a :class:`ToolState`: cattrs checks a read against it, field by field."""

    generation: int
    tools: tuple[dict[str, Any], ...] = ()
    plugin_tool_names: tuple[str, ...] = ()


converter.register_unstructure_hook(
    ToolState,
    lambda state: {"generation": state.generation, "tools": state.tools, "plugin_tool_names": state.plugin_tool_names},
)
converter.register_structure_hook(
    ToolState,
    lambda value, _: ToolState(*attrs.astuple(converter.structure(value, _StoredToolState), recurse=False)),
)


def _encode_tool_state(state: ToolState) -> bytes:
    """What :func:`encode` writes for ``state``, with its packed specs spliced in as they are.

    The same bytes as encoding the decoded record (so blobs keep their refs and dedup),
    without decoding and re-encoding a catalogue on every change.
    """
    header = msgpack.Packer()
    return b"".join(
        (
            header.pack_array_header(2),
            pack(SCHEMA_VERSION),
            header.pack_map_header(3),
            pack("generation"),
            pack(state.generation),
            pack("tools"),
            state.packed_tools.packed_array(),
            pack("plugin_tool_names"),
            pack(state.plugin_tool_names),
        )
    )


def _register_fast_node_structure() -> None:
    """Structure well-formed nodes directly, and anything else through cattrs' checks.

    A resume decodes every node of the path; cattrs' generated hook costs several times
    more than checking the five fields here. Data that is not exactly a well-typed node
    record takes cattrs' path, so damaged data gets the same detailed error as before.
    """
    checked = converter.get_structure_hook(Node)
    keys = {field.name for field in attrs.fields(Node)}

    def structure(value: Any, cls: type) -> Node:
        if (
            type(value) is dict
            and value.keys() == keys
            and type(value["node_id"]) is str
            and type(value["kind"]) is str
            and (value["parent_id"] is None or type(value["parent_id"]) is str)
            and type(value["created_at"]) is float
        ):
            return Node(value["node_id"], value["parent_id"], value["kind"], value["body"], value["created_at"])
        return checked(value, cls)

    converter.register_structure_hook(Node, structure)


_register_fast_node_structure()


def pack(value: Any) -> bytes:
    """msgpack-encode a plain value, raising a lash error for what msgpack cannot hold."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"value cannot be stored: {exc}") from exc


def compress_record(data: bytes, level: int) -> bytes:
    """``data`` zlib-compressed behind :data:`COMPRESSED_MAGIC`, or ``data`` itself when that is not smaller.

    Sealed (encrypted) records are returned as they are: ciphertext does not compress.
    """
    if data[:1] == b"\xc1":
        return data
    packed = COMPRESSED_MAGIC + zlib.compress(data, level)
    return packed if len(packed) < len(data) else data


def unpack(data: bytes, what: str = "record") -> Any:
    """msgpack-decode (expanding a :func:`compress_record` record); bad bytes raise :class:`CorruptRecordError`."""
    if data[: len(COMPRESSED_MAGIC)] == COMPRESSED_MAGIC:
        try:
            data = zlib.decompress(data[len(COMPRESSED_MAGIC) :])
        except zlib.error as exc:
            raise CorruptRecordError(what, f"compressed record does not decompress ({exc})") from exc
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        if data[: len(ENCRYPTED_MAGIC)] == ENCRYPTED_MAGIC:
            raise DecryptionError(
                what, "it is encrypted, but [encryption] is not configured (set it up with the key it was written with)"
            ) from None
        raise CorruptRecordError(what, f"not valid msgpack ({exc})") from exc


def encode(record: Any) -> bytes:
    """Bytes for ``record``, tagged with :data:`SCHEMA_VERSION`."""
    if type(record) is ToolState:
        return _encode_tool_state(record)
    return pack([SCHEMA_VERSION, converter.unstructure(record)])


def decode(data: bytes, cls: type[T], what: str | None = None) -> T:
    """The ``cls`` record stored in ``data``; checks the schema version first."""
    label = what or cls.__name__
    raw = unpack(data, label)
    if not (isinstance(raw, list) and len(raw) == 2 and type(raw[0]) is int and raw[0] >= 1):
        raise CorruptRecordError(label, "not a versioned lash record")
    version, payload = raw
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(version, SCHEMA_VERSION, label)
    try:
        return converter.structure(payload, cls)
    except Exception as exc:
        raise CorruptRecordError(label, f"does not match the {cls.__name__} record ({_problems(exc)})") from exc


def _problems(exc: Exception) -> str:
    """What is wrong where, e.g. ``expected str, got int @ $.node_id``."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return f"{type(exc).__name__}: {exc}"

    def describe(error: BaseException, _: Any) -> str:
        return "missing" if isinstance(error, KeyError) else str(error)

    return "; ".join(cattrs.transform_error(exc, format_exception=describe)[:3])


def to_plain(record: Any) -> Any:
    """Unstructure a record into plain dicts/lists (CLI --json output, export)."""
    return converter.unstructure(record)


def from_plain(data: Any, cls: type[T]) -> T:
    """Structure plain data into ``cls``."""
    return converter.structure(data, cls)
