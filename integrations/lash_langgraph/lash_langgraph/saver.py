"""``LashSaver``: LangGraph's ``BaseCheckpointSaver`` on lash sessions, on whatever backend lash is configured with.

Each ``(thread_id, checkpoint_ns)`` is a lash session (see :mod:`lash_langgraph.mapping`) whose
graph holds the thread's checkpoints as nodes (see :mod:`lash_langgraph.records`): a checkpoint's
node hangs under its parent checkpoint's chain, so a LangGraph fork is a lash branch and the
session's leaf follows the newest write. Every write is one lash commit (revision
compare-and-swap); on a conflict with another writer the saver reloads and retries.

The async methods run the same code in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash
from lash import codec
from lash.model import ActivePath
from lash.store import StandardSessionStore
from lash_langgraph.index import CheckpointIndex
from lash_langgraph.mapping import Address, address_of, parse_session_id, thread_address
from lash_langgraph.records import (
    CHECKPOINT_TYPE,
    FORMAT_VERSION,
    THREAD_TYPE,
    WRITES_TYPE,
    encode_checkpoint,
    encode_writes,
    thread_body,
)
from lash_langgraph.rewrite import graph_keeping

COMMIT_ATTEMPTS = 5
"""How often a write is retried after another writer moved the same session's head."""

PRUNE_STRATEGIES = ("keep_latest", "delete")


class UnsupportedPruneStrategy(lash.LashError, ValueError):
    """``prune`` was asked for a strategy the saver does not know."""


class ThreadExistsError(lash.StoreError):
    """``copy_thread`` would overwrite checkpoints the target thread already has."""


@attrs.define
class _OpenThread:
    """A cached lash session of one address, the index derived from it, and nodes appended but not committed."""

    session: lash.Session
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


class LashSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that stores threads in lash.

    ``LashSaver(handle)`` uses an open :class:`lash.Lash` (the caller closes it);
    :meth:`from_config` opens one from a config path or dict and closes it with the saver.
    """

    def __init__(
        self,
        lash_handle: lash.Lash,
        *,
        serde: SerializerProtocol | None = None,
        max_open_sessions: int = 64,
    ) -> None:
        super().__init__(serde=serde)
        if not isinstance(lash_handle, lash.Lash):
            raise TypeError(f"LashSaver needs an open lash.Lash (lash.open(...)), not {type(lash_handle).__name__}")
        self.lash = lash_handle
        self.max_open_sessions = max_open_sessions
        self._owns_handle = False
        self._open: OrderedDict[str, _OpenThread] = OrderedDict()
        self._lock = threading.RLock()

    @classmethod
    def from_config(
        cls,
        config: lash.LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        serde: SerializerProtocol | None = None,
        plugins: Iterable[object] = (),
    ) -> LashSaver:
        """A saver on ``lash.open(config)`` (same lookup order: path, dict, ``$LASH_CONFIG``, ``lash.toml``)."""
        saver = cls(lash.open(config, plugins=plugins), serde=serde)
        saver._owns_handle = True
        return saver

    def close(self) -> None:
        """Close the sessions the saver keeps open, and the lash handle if the saver opened it."""
        with self._lock:
            for session_id in list(self._open):
                self._evict(session_id)
            if self._owns_handle:
                self.lash.close()

    def __enter__(self) -> LashSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LashSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------------------

    def _evict(self, session_id: str) -> None:
        cached = self._open.pop(session_id, None)
        if cached is not None:
            cached.session.close()

    def _thread(self, address: Address, *, create: bool) -> _OpenThread | None:
        """The session of ``address`` as committed now; None if it does not exist and ``create`` is False."""
        session_id = address.session_id
        cached = self._open.get(session_id)
        if cached is not None:
            if not cached.session.closed and _stored_revision(cached.session) == cached.session.head_revision:
                self._open.move_to_end(session_id)
                return cached
            self._evict(session_id)
        if create and address.checkpoint_ns:
            root = self._thread(address.root, create=True)
            assert root is not None
            session = root.session.spawn_child(session_id)
        elif create:
            session = self.lash.session(session_id)
        else:
            store = self.lash.backend.open_session(session_id, create=False)
            if store is None:
                return None
            store.close()
            session = self.lash.session(session_id)
        try:
            opened = _OpenThread(session, CheckpointIndex.from_nodes(session.graph.nodes.values()))
        except BaseException:
            session.close()
            raise
        self._open[session_id] = opened
        while len(self._open) > max(self.max_open_sessions, 2):
            self._evict(next(iter(self._open)))
        return opened

    def _write(self, address: Address, change: Callable[[_OpenThread], bool]) -> None:
        """Apply ``change`` to the session and commit it if it returns True; retried after conflicts.

        Any failure discards the uncommitted change with the cached session, so nothing is
        stored half-way and the next call starts from what is committed.
        """
        with self._lock:
            for attempt in range(COMMIT_ATTEMPTS):
                opened = self._thread(address, create=True)
                assert opened is not None
                try:
                    if change(opened):
                        opened.session.commit()
                        opened.committed()
                    return
                except lash.HeadRevisionConflict:
                    self._evict(address.session_id)
                    if attempt == COMMIT_ATTEMPTS - 1:
                        raise
                except BaseException:
                    self._evict(address.session_id)
                    raise

    def _namespaces(self, thread: Address) -> list[str]:
        """The subgraph namespaces a thread has checkpoints in (kept in its root session's execution state)."""
        opened = self._thread(thread, create=False)
        return _read_namespaces(opened.session) if opened is not None else []

    def _register_namespace(self, address: Address) -> None:
        def change(opened: _OpenThread) -> bool:
            known = _read_namespaces(opened.session)
            if address.checkpoint_ns in known:
                return False
            _write_namespaces(opened.session, [*known, address.checkpoint_ns])
            return True

        self._write(address.root, change)

    def _addresses(self, config: RunnableConfig | None) -> list[Address]:
        """The streams a ``list`` call covers: one namespace, every namespace of a thread, or everything."""
        if config is None:
            found = (parse_session_id(info.session_id) for info in self.lash.sessions())
            return [a for a in found if a is not None]
        address = address_of(config)
        if config["configurable"].get("checkpoint_ns") is not None:
            return [address]
        return [address.root, *(Address(address.thread_id, ns) for ns in self._namespaces(address.root))]

    # -- reading ----------------------------------------------------------------------------

    def _tuple(self, address: Address, index: CheckpointIndex, checkpoint_id: str, config: RunnableConfig | None):
        stored = index.checkpoints[checkpoint_id]
        record = self.serde.loads_typed(stored.checkpoint)
        values = index.resolve(checkpoint_id, record["channel_versions"])
        return CheckpointTuple(
            config=config or _config(address, checkpoint_id),
            checkpoint={**record, "channel_values": {ch: self.serde.loads_typed(t) for ch, t in values.items()}},
            metadata=self.serde.loads_typed(stored.metadata),
            parent_config=_config(address, stored.parent_id) if stored.parent_id else None,
            pending_writes=[
                (w.task_id, w.channel, self.serde.loads_typed(w.typed)) for w in index.ordered_writes(checkpoint_id)
            ],
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the thread's newest one; None if there is none."""
        address = address_of(config)
        checkpoint_id = get_checkpoint_id(config)
        with self._lock:
            opened = self._thread(address, create=False)
            if opened is None:
                return None
            if checkpoint_id is None:
                latest = opened.index.latest_id()
                return None if latest is None else self._tuple(address, opened.index, latest, None)
            if checkpoint_id not in opened.index.checkpoints:
                return None
            return self._tuple(address, opened.index, checkpoint_id, config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first per namespace, filtered by metadata, ``before`` a checkpoint id, up to ``limit``."""
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        with self._lock:
            addresses = self._addresses(config)
        for address in addresses:
            if remaining is not None and remaining <= 0:
                return
            with self._lock:
                found = self._matching(address, wanted_id, before_id, filter, remaining)
            if remaining is not None:
                remaining -= len(found)
            yield from found

    def _matching(
        self,
        address: Address,
        wanted_id: str | None,
        before_id: str | None,
        filter: Mapping[str, Any] | None,
        limit: int | None,
    ) -> list[CheckpointTuple]:
        opened = self._thread(address, create=False)
        if opened is None:
            return []
        index = opened.index
        found: list[CheckpointTuple] = []
        for checkpoint_id in index.ids_newest_first():
            if limit is not None and len(found) >= limit:
                break
            if (wanted_id and checkpoint_id != wanted_id) or (before_id and checkpoint_id >= before_id):
                continue
            if filter:
                metadata = self.serde.loads_typed(index.checkpoints[checkpoint_id].metadata)
                if not all(value == metadata.get(key) for key, value in filter.items()):
                    continue
            found.append(self._tuple(address, index, checkpoint_id, None))
        return found

    # -- writing ----------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint as one node under its parent's chain, with the values of the channels it changed."""
        address = address_of(config)
        parent_id = config["configurable"].get("checkpoint_id")
        stored = encode_checkpoint(
            self.serde, checkpoint, get_checkpoint_metadata(config, metadata), new_versions, parent_id
        )

        def change(opened: _OpenThread) -> bool:
            opened.append(
                opened.checkpoint_anchor(address, stored.checkpoint_id, parent_id), CHECKPOINT_TYPE, stored.body()
            )
            return True

        with self._lock:
            if address.checkpoint_ns:
                self._register_namespace(address)
            self._write(address, change)
        return _config(address, checkpoint["id"])

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for a checkpoint; a ``(task_id, idx)`` already stored is kept."""
        address = address_of(config)
        checkpoint_id = config["configurable"].get("checkpoint_id")
        if not isinstance(checkpoint_id, str):
            raise lash.StoreError(
                f'put_writes needs the checkpoint\'s configurable["checkpoint_id"], got {checkpoint_id!r}'
            )
        batch = encode_writes(self.serde, checkpoint_id, writes, task_id, task_path)

        def change(opened: _OpenThread) -> bool:
            fresh = opened.index.unseen(batch)
            if not fresh.writes:
                return False
            opened.append(opened.writes_anchor(address, checkpoint_id), WRITES_TYPE, fresh.body())
            return True

        self._write(address, change)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's sessions (every namespace), checkpoints and writes."""
        thread = thread_address(thread_id)
        with self._lock:
            for ns in self._namespaces(thread):
                self._delete(Address(thread.thread_id, ns))
            self._delete(thread)

    def _delete(self, address: Address) -> None:
        self._evict(address.session_id)
        self.lash.delete(address.session_id)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every namespace's checkpoints and writes to a thread that has none yet."""
        source, target = thread_address(source_thread_id), thread_address(target_thread_id)
        with self._lock:
            namespaces = ["", *self._namespaces(source)]
            for ns in namespaces:
                existing = self._thread(Address(target.thread_id, ns), create=False)
                if existing is not None and existing.index.checkpoints:
                    raise ThreadExistsError(
                        f"copy_thread: target thread {target.thread_id!r} already has checkpoints"
                        f"{f' in namespace {ns!r}' if ns else ''}; delete it first"
                    )
            for ns in namespaces:
                opened = self._thread(Address(source.thread_id, ns), create=False)
                if opened is None:
                    continue
                graph = _renamed(opened.session.graph, opened.index, target.thread_id)
                copy_address = Address(target.thread_id, ns)
                if ns:
                    self._register_namespace(copy_address)
                self._write(copy_address, lambda t, graph=graph: _replace_graph(t, graph))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``, in every thread."""
        doomed_runs = set(run_ids)
        if not doomed_runs:
            return
        with self._lock:
            for info in self.lash.sessions():
                address = parse_session_id(info.session_id)
                if address is None:
                    continue
                opened = self._thread(address, create=False)
                if opened is None:
                    continue
                doomed = {
                    cid
                    for cid, stored in opened.index.checkpoints.items()
                    if self.serde.loads_typed(stored.metadata).get("run_id") in doomed_runs
                }
                if doomed:
                    self._keep_only(address, set(opened.index.checkpoints) - doomed)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint (self-contained); ``delete``: delete the threads."""
        if strategy not in PRUNE_STRATEGIES:
            raise UnsupportedPruneStrategy(
                f"unknown prune strategy {strategy!r} (valid: {', '.join(PRUNE_STRATEGIES)})"
            )
        with self._lock:
            for thread_id in thread_ids:
                thread = thread_address(thread_id)
                if strategy == "delete":
                    self.delete_thread(thread.thread_id)
                    continue
                for ns in ["", *self._namespaces(thread)]:
                    address = Address(thread.thread_id, ns)
                    opened = self._thread(address, create=False)
                    latest = opened.index.latest_id() if opened is not None else None
                    if latest is not None and len(opened.index.checkpoints) > 1:
                        self._keep_only(address, {latest})

    def _keep_only(self, address: Address, keep: set[str]) -> None:
        def change(opened: _OpenThread) -> bool:
            index = opened.index

            def versions(checkpoint_id: str) -> Mapping[str, Any]:
                return self.serde.loads_typed(index.checkpoints[checkpoint_id].checkpoint)["channel_versions"]

            return _replace_graph(opened, graph_keeping(opened.session.graph, index, keep, versions))

        self._write(address, change)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``"<32-digit counter>.<random>"`` like LangGraph's own savers: versions written on two forks differ."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- async: the same code in a worker thread ---------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(lambda: [*self.list(config, filter=filter, before=before, limit=limit)])
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


# --- helpers ----------------------------------------------------------------------------------


def _config(address: Address, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": address.thread_id,
            "checkpoint_ns": address.checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _stored_revision(session: lash.Session) -> int | None:
    """The session's committed head revision, read without loading its nodes where the store allows."""
    store = session.store
    if isinstance(store, StandardSessionStore):
        head = store.load_head()
        return None if head is None else head.revision
    read = store.load_session(ActivePath())
    return None if read is None else read.head_revision


def _read_namespaces(session: lash.Session) -> list[str]:
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


def _write_namespaces(session: lash.Session, namespaces: list[str]) -> None:
    session.set_execution_state(codec.pack({"format": FORMAT_VERSION, "namespaces": namespaces}))


def _renamed(graph: lash.SessionGraph, index: CheckpointIndex, thread_id: str) -> lash.SessionGraph:
    """A copy of ``graph`` whose thread node names ``thread_id``."""
    nodes = []
    for node in graph.nodes.values():
        if node.node_id == index.thread_node_id:
            node = attrs.evolve(node, body={**node.body, "thread_id": thread_id})
        nodes.append(node)
    return lash.SessionGraph.from_nodes(nodes, graph.leaf_node_id)


def _replace_graph(opened: _OpenThread, graph: lash.SessionGraph) -> bool:
    """Replace the session's graph (one ``ReplaceFull`` commit) and re-derive the index once committed."""
    opened.session.reset(graph)
    opened.index = CheckpointIndex()
    opened.pending[:] = list(graph.nodes)
    return True
