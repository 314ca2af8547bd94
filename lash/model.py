"""The records lash stores and passes around: frozen attrs classes, no dict soup.

They mirror the persistence model of the Rust runtime lash (crate ``lash-core``, store
module). Change a record with :func:`attrs.evolve`; never mutate one from outside.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NewType, TypeAlias

import attrs
import msgpack

if TYPE_CHECKING:  # the graph module builds on Node; records only name its type
    from lash.graph import SessionGraph

BlobRef = NewType("BlobRef", str)
"""``sha256:<64 lowercase hex>`` — the SHA-256 of a blob's *uncompressed* content."""

_BLOB_REF = re.compile(r"sha256:[0-9a-f]{64}")


def blob_ref_for(content: bytes) -> BlobRef:
    """The content address of ``content``."""
    return BlobRef("sha256:" + hashlib.sha256(content).hexdigest())


def is_blob_ref(value: object) -> bool:
    """True when ``value`` is a well-formed ``sha256:`` ref."""
    return isinstance(value, str) and _BLOB_REF.fullmatch(value) is not None


class BlobKind(enum.StrEnum):
    """What a blob holds; recorded in its envelope."""

    GENERIC = "generic"
    CHECKPOINT_MANIFEST = "checkpoint_manifest"
    TOOL_STATE = "tool_state"
    PLUGIN_SNAPSHOT = "plugin_snapshot"
    EXECUTION_STATE = "execution_state"


class BlobHint(enum.StrEnum):
    """Hints that steer the compression profile."""

    COMPRESSIBLE = "compressible"
    LARGE_PAYLOAD = "large_payload"


# --- usage -------------------------------------------------------------------------------


@attrs.frozen
class TokenUsage:
    """Token counts of one or more model calls. Adds with ``+``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_output_tokens: int = 0

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
            + self.reasoning_output_tokens
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(  # field by field: this runs several times per commit
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cache_write_input_tokens + other.cache_write_input_tokens,
            self.reasoning_output_tokens + other.reasoning_output_tokens,
        )


@attrs.frozen
class LedgerEntry:
    """Usage attributed to one ``(source, model)`` pair."""

    source: str
    model: str
    usage: TokenUsage

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.model)


def merge_ledger(entries: Iterable[LedgerEntry]) -> tuple[LedgerEntry, ...]:
    """Sum entries by ``(source, model)``, keeping first-seen order; drop zero totals."""
    merged: dict[tuple[str, str], TokenUsage] = {}
    for entry in entries:
        merged[entry.key] = merged.get(entry.key, TokenUsage()) + entry.usage
    return tuple(LedgerEntry(s, m, u) for (s, m), u in merged.items() if u.total != 0)


# --- graph -------------------------------------------------------------------------------


@attrs.frozen
class Node:
    """One conversation or event node. ``body`` is any msgpack-able value."""

    node_id: str
    parent_id: str | None
    kind: str
    body: Any
    created_at: float


class NodeKind(enum.StrEnum):
    """Node kinds the core itself writes; plugins use ``plugin:<type>``."""

    MESSAGE = "message"
    EVENT = "event"
    FRAME = "frame"


# --- session configuration and turn state -------------------------------------------------


@attrs.frozen
class SessionConfig:
    """The model/provider configuration a session runs with."""

    provider_id: str = ""
    configured_model: str = ""
    context_window: int = 0
    execution_mode: str = ""
    standard_context_approach: str = ""
    model_variant: str | None = None


@attrs.frozen
class TurnState:
    """Where the agent loop stands: turn counter and usage so far."""

    turn_index: int = 0
    token_usage: TokenUsage = TokenUsage()
    last_prompt_usage: TokenUsage | None = None
    mode_turn_options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class SessionMeta:
    """Descriptive metadata saved beside a session."""

    session_id: str
    session_name: str
    created_at: float
    model: str
    cwd: str | None = None
    parent_session_id: str | None = None


@attrs.frozen
class SessionInfo:
    """What a session picker shows."""

    session_id: str
    cwd: str | None
    parent_session_id: str | None
    first_user_message: str | None
    user_message_count: int
    head_revision: int | None = None


# --- checkpoints -------------------------------------------------------------------------


@attrs.frozen(eq=False, repr=False)
class PackedTools:
    """Tool specs held as their msgpack bytes, one ``bytes`` per spec.

    Bytes are invisible to the cyclic garbage collector, while a decoded 64 KiB catalogue
    is about a thousand dicts and lists that every full collection walks, once per live
    session. Reads decode fresh copies, so nobody can alter a held spec through a result.
    Equal when the specs are (bytes first; decoded only when the bytes differ).
    """

    specs: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, tools: Iterable[Any]) -> PackedTools:
        """Pack ``tools`` (msgpack-able values, normally dicts with a ``"name"``)."""
        from lash import codec  # codec builds on these records

        return cls(tuple(codec.pack(tool) for tool in tools))

    def packed_array(self) -> bytes:
        """The specs as one msgpack array, exactly as ``codec.pack(list(decoded()))`` writes it."""
        return msgpack.Packer().pack_array_header(len(self.specs)) + b"".join(self.specs)

    def decoded(self) -> tuple[Any, ...]:
        """Fresh copies of the specs (one decoding pass for the whole catalogue)."""
        from lash import codec

        return tuple(codec.unpack(self.packed_array(), "tool specs"))

    def __len__(self) -> int:
        return len(self.specs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedTools):
            return NotImplemented
        if self.specs == other.specs:
            return True
        return len(self.specs) == len(other.specs) and self.decoded() == other.decoded()

    __hash__ = None  # type: ignore[assignment]  # equal specs may pack differently (key order, 1 and 1.0)

    def __repr__(self) -> str:
        return f"PackedTools({self.decoded()!r})"


@attrs.frozen(init=False, repr=False)
class ToolState:
    """The tool registry: the tool specs offered to the model and a change counter.

    ``plugin_tool_names`` are the tools plugins contributed (the rest the application
    registered), so that a resumed registry drops a tool its plugin no longer offers.
    The specs are held packed (:class:`PackedTools`); ``tools`` decodes fresh copies on
    each access, so changing a dict it returned changes neither this record nor what is
    stored. ``codec.encode`` writes the packed specs as they are, without decoding them.
    """

    generation: int
    packed_tools: PackedTools = attrs.field(alias="tools")
    plugin_tool_names: tuple[str, ...] = ()

    def __init__(
        self,
        generation: int,
        tools: Iterable[Any] | PackedTools = (),
        plugin_tool_names: Iterable[str] = (),
    ) -> None:
        packed = tools if isinstance(tools, PackedTools) else PackedTools.of(tools)
        self.__attrs_init__(generation, packed, tuple(plugin_tool_names))

    @property
    def tools(self) -> tuple[dict[str, Any], ...]:
        """The tool specs, decoded afresh (see the class docstring)."""
        return self.packed_tools.decoded()

    def __repr__(self) -> str:
        names = self.plugin_tool_names
        return f"ToolState(generation={self.generation!r}, tools={self.tools!r}, plugin_tool_names={names!r})"


@attrs.frozen
class PluginSnapshot:
    """Per-plugin state, keyed by plugin name; ``revision`` bumps when entries change."""

    revision: int
    entries: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Checkpoint:
    """The checkpoint manifest: turn state plus refs to the snapshot blobs.

    ``tool_state_generation`` is recorded beside the ref so that the next commit can reuse
    the blob without reading it when the generation did not change.
    """

    turn_state: TurnState = TurnState()
    tool_state_ref: BlobRef | None = None
    plugin_snapshot_ref: BlobRef | None = None
    plugin_snapshot_revision: int | None = None
    execution_state_ref: BlobRef | None = None
    tool_state_generation: int | None = None

    def blob_refs(self) -> tuple[BlobRef, ...]:
        """The blob refs this manifest keeps alive."""
        refs = (self.tool_state_ref, self.plugin_snapshot_ref, self.execution_state_ref)
        return tuple(r for r in refs if r is not None)


@attrs.frozen
class HydratedCheckpoint:
    """A checkpoint with its snapshot blobs loaded."""

    turn_state: TurnState = TurnState()
    tool_state: ToolState | None = None
    plugin_snapshot: PluginSnapshot | None = None
    execution_state: bytes | None = None


@attrs.frozen
class AgentFrame:
    """A stretch of the conversation the model sees; each compaction opens the next one."""

    frame_id: str
    reason: str
    seed_node_ids: tuple[str, ...] = ()
    start_node_id: str | None = None
    protocol_turn_options: dict[str, Any] = attrs.field(factory=dict)


# --- read scopes and graph deltas ---------------------------------------------------------


@attrs.frozen
class FullGraph:
    """Read every visible node."""


@attrs.frozen
class ActivePath:
    """Read only the path root → ``leaf_node_id`` (the head's leaf when None)."""

    leaf_node_id: str | None = None


ReadScope: TypeAlias = FullGraph | ActivePath


@attrs.frozen
class Unchanged:
    """No new nodes; only the leaf (possibly) moves."""

    leaf_node_id: str | None


@attrs.frozen
class Append:
    """Nodes added since the previous commit, parents first."""

    nodes: tuple[Node, ...]
    leaf_node_id: str | None


@attrs.frozen
class ReplaceFull:
    """Replace the whole stored node set (after a heal or reset)."""

    graph: SessionGraph


GraphDelta: TypeAlias = Unchanged | Append | ReplaceFull


# --- commits and reads -------------------------------------------------------------------


@attrs.frozen
class Commit:
    """One atomic change of a session's head."""

    session_id: str
    expected_head_revision: int | None
    config: SessionConfig
    graph: GraphDelta
    checkpoint: HydratedCheckpoint
    usage_deltas: tuple[LedgerEntry, ...] = ()
    agent_frames: tuple[AgentFrame, ...] = ()
    current_agent_frame_id: str | None = None


@attrs.frozen
class CommitResult:
    """What a successful commit produced."""

    head_revision: int
    checkpoint_ref: BlobRef
    manifest: Checkpoint


@attrs.frozen
class SessionRead:
    """A session as loaded from a store."""

    session_id: str
    head_revision: int
    config: SessionConfig
    graph: SessionGraph
    checkpoint_ref: BlobRef
    checkpoint: HydratedCheckpoint
    token_ledger: tuple[LedgerEntry, ...]
    agent_frames: tuple[AgentFrame, ...] = ()
    current_agent_frame_id: str | None = None


@attrs.frozen
class Head:
    """The stored head of a session: what ``revision`` points at. Internal to stores."""

    revision: int
    config: SessionConfig
    leaf_node_id: str | None
    checkpoint_ref: BlobRef
    manifest: Checkpoint
    agent_frames: tuple[AgentFrame, ...] = ()
    current_agent_frame_id: str | None = None
    committed_at: float = 0.0


@attrs.frozen
class GcReport:
    """What a blob collection did."""

    root_count: int
    retained_blob_count: int
    deleted_blob_count: int


@attrs.frozen
class VacuumReport:
    """What a vacuum removed."""

    removed_node_count: int
