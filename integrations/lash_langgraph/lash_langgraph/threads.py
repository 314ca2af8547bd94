"""The lash sessions a saver keeps open, and the storage steps its operations are written in.

Every operation of :class:`~lash_langgraph.LashSaver` is written once, as a generator that
does no I/O: it *yields* a :class:`Step` ("open this session", "commit it") and *receives*
its result, or has its exception thrown in at the ``yield``. A face
(:mod:`lash_langgraph.faces`) answers the steps with ``lash.Lash`` calls for the sync methods
and with awaited ``lash.aio`` calls for the ``a*`` methods. This is the design of lash's
own :mod:`lash.operations`, one level up: the steps are lash session calls, not store calls.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import Any, Literal, TypeVar

import attrs
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash
import lash.aio
from lash import codec
from lash_langgraph.index import CheckpointIndex
from lash_langgraph.mapping import Address
from lash_langgraph.records import FORMAT_VERSION, THREAD_TYPE, WRITES_TYPE, thread_body

T = TypeVar("T")

COMMIT_ATTEMPTS = 5
"""How often a write is retried after another writer moved the same session's head."""

LashSession = lash.Session | lash.aio.Session
"""A session of either face; the recording calls the operations make are the same on both."""

StepName = Literal["open", "spawn", "exists", "revision", "commit", "close_session", "sessions", "delete"]


@attrs.frozen
class Step:
    """Ask the face for one storage call, ``face.<method>(*args)`` (see :class:`lash_langgraph.faces.SyncFace`)."""

    method: StepName
    args: tuple[Any, ...] = ()


Operation = Generator[Step, Any, T]


@attrs.define
class OpenThread:
    """A cached lash session of one address, the index derived from it, and nodes appended but not committed."""

    session: LashSession
    index: CheckpointIndex
    pending: list[str] = attrs.field(factory=list)

    def append(self, parent_node_id: str | None, plugin_type: str, body: Any) -> str:
        if self.session.graph.leaf_node_id != parent_node_id and parent_node_id is not None:
            self.session.checkout(parent_node_id)
        node_id = self.session.append_plugin(plugin_type, body)
        self.pending.append(node_id)
        return node_id

    def thread_node(self, address: Address) -> str:
        """The session's root node, appended on the first write."""
        if self.index.thread_node_id is None:
            node_id = self.append(None, THREAD_TYPE, thread_body(address.thread_id, address.checkpoint_ns))
            self.index.thread_node_id = node_id
        return self.index.thread_node_id

    def checkpoint_anchor(self, address: Address, checkpoint_id: str, parent_id: str | None) -> str:
        """Where a new checkpoint's node goes: under its parent's chain.

        LangGraph's background writer may store a task's writes before the checkpoint they
        belong to; those early writes were put under the leaf, and when they continue the
        parent's chain the checkpoint goes under them, so the chain stays one path.
        """
        anchor = self.index.tails.get(parent_id, self.thread_node(address)) if parent_id else self.thread_node(address)
        early = self.index.tails.get(checkpoint_id)
        node = early
        while node is not None and node != anchor:
            stored = self.session.graph.nodes.get(node)
            if stored is None or stored.kind != f"plugin:{WRITES_TYPE}":
                return anchor
            node = stored.parent_id
        return early if node == anchor and early is not None else anchor

    def writes_anchor(self, address: Address, checkpoint_id: str) -> str:
        """Under the checkpoint's chain; before the checkpoint itself arrived, under the leaf."""
        if checkpoint_id in self.index.tails:
            return self.index.tails[checkpoint_id]
        return self.session.graph.leaf_node_id or self.thread_node(address)

    def committed(self) -> None:
        for node_id in self.pending:
            self.index.add(self.session.graph.nodes[node_id])
        self.pending.clear()

    def replace_graph(self, graph: lash.SessionGraph) -> bool:
        """Replace the session's graph (one ``ReplaceFull`` commit); the index is re-derived once committed."""
        self.session.reset(graph)
        self.index = CheckpointIndex()
        self.pending[:] = list(graph.nodes)
        return True


class Threads:
    """The sessions one face keeps open (least recently used closed beyond ``limit``), and the serializer.

    Each face has its own: a ``lash.Session`` and a ``lash.aio.Session`` cannot be shared.
    """

    def __init__(self, serde: SerializerProtocol, limit: int) -> None:
        self.serde = serde
        self.limit = max(limit, 2)
        self.open: OrderedDict[str, OpenThread] = OrderedDict()

    def evict(self, session_id: str) -> Operation[None]:
        cached = self.open.pop(session_id, None)
        if cached is not None:
            yield Step("close_session", (cached.session,))

    def close_all(self) -> Operation[None]:
        for session_id in list(self.open):
            yield from self.evict(session_id)

    def cached(self, address: Address) -> OpenThread | None:
        """The session of ``address`` as last seen (no I/O: it may be stale), or None if none is open."""
        return self.open.get(address.session_id)

    def thread(self, address: Address, *, create: bool) -> Operation[OpenThread | None]:
        """The session of ``address`` as committed now; None if it does not exist and ``create`` is False."""
        session_id = address.session_id
        cached = self.open.get(session_id)
        if cached is not None:
            if not cached.session.closed:
                stored_revision = yield Step("revision", (cached.session,))
                if stored_revision == cached.session.head_revision:
                    self.open.move_to_end(session_id)
                    return cached
            yield from self.evict(session_id)
        if create and address.checkpoint_ns:
            root = yield from self.thread(address.root, create=True)
            assert root is not None
            session = yield Step("spawn", (root.session, session_id))
        elif create or (yield Step("exists", (session_id,))):
            session = yield Step("open", (session_id,))
        else:
            return None
        try:
            opened = OpenThread(session, CheckpointIndex.from_nodes(session.graph.nodes.values()))
        except BaseException:
            yield Step("close_session", (session,))
            raise
        self.open[session_id] = opened
        while len(self.open) > self.limit:
            yield from self.evict(next(iter(self.open)))
        return opened

    def write(self, address: Address, change: Callable[[OpenThread], bool]) -> Operation[None]:
        """Apply ``change`` to the session and commit it if it returns True; retried after conflicts.

        Any failure (a cancellation too) discards the uncommitted change with the cached
        session, so nothing is stored half-way and the next call starts from what is committed.
        """
        for attempt in range(COMMIT_ATTEMPTS):
            opened = yield from self.thread(address, create=True)
            assert opened is not None
            try:
                if change(opened):
                    yield Step("commit", (opened.session,))
                    opened.committed()
                return
            except GeneratorExit:
                raise
            except lash.HeadRevisionConflict:
                yield from self.evict(address.session_id)
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
            except BaseException:
                yield from self.evict(address.session_id)
                raise

    def delete(self, address: Address) -> Operation[None]:
        yield from self.evict(address.session_id)
        yield Step("delete", (address.session_id,))

    # -- the namespace registry ---------------------------------------------------------------

    def namespaces(self, thread: Address) -> Operation[list[str]]:
        """The subgraph namespaces a thread has checkpoints in (kept in its root session's execution state)."""
        opened = yield from self.thread(thread, create=False)
        return read_namespaces(opened.session) if opened is not None else []

    def register_namespace(self, address: Address) -> Operation[None]:
        def change(opened: OpenThread) -> bool:
            known = read_namespaces(opened.session)
            if address.checkpoint_ns in known:
                return False
            opened.session.set_execution_state(
                codec.pack({"format": FORMAT_VERSION, "namespaces": [*known, address.checkpoint_ns]})
            )
            return True

        yield from self.write(address.root, change)


def read_namespaces(session: LashSession) -> list[str]:
    state = session.execution_state
    if state is None:
        return []
    registry = codec.unpack(state, f"LangGraph namespace registry of session {session.session_id!r}")
    found = registry.get("format") if isinstance(registry, dict) else None
    if not isinstance(found, int) or not isinstance(registry.get("namespaces"), list):
        raise lash.CorruptRecordError(f"execution state of session {session.session_id!r}", "not a namespace registry")
    if found > FORMAT_VERSION:
        raise lash.SchemaVersionError(found, FORMAT_VERSION, f"namespace registry of {session.session_id!r}")
    return list(registry["namespaces"])
