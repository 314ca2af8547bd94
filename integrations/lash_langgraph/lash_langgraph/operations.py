"""Every ``BaseCheckpointSaver`` operation, written once for the sync and the async methods.

Each is a generator over :class:`~lash_langgraph.threads.Step` s (see :mod:`lash_langgraph.threads`):
``LashSaver.put`` runs :func:`put` on its sync face, ``LashSaver.aput`` awaits the same
generator on its ``lash.aio`` face. What is stored where is decided here and in the modules
this one calls (:mod:`~lash_langgraph.records`, :mod:`~lash_langgraph.index`,
:mod:`~lash_langgraph.rewrite`), never in a face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash
from lash_langgraph.index import CheckpointIndex
from lash_langgraph.lists import loads, plan_deltas
from lash_langgraph.mapping import Address, address_of, parse_session_id, thread_address
from lash_langgraph.records import CHECKPOINT_TYPE, WRITES_TYPE, StoredCheckpoint, encode_checkpoint, encode_writes
from lash_langgraph.rewrite import graph_keeping
from lash_langgraph.threads import OpenThread, Operation, Step, Threads

PRUNE_STRATEGIES = ("keep_latest", "delete")


class UnsupportedPruneStrategy(lash.LashError, ValueError):
    """``prune`` was asked for a strategy the saver does not know."""


class ThreadExistsError(lash.StoreError):
    """``copy_thread`` would overwrite checkpoints the target thread already has."""


# --- reading ----------------------------------------------------------------------------------


def get_tuple(threads: Threads, config: RunnableConfig) -> Operation[CheckpointTuple | None]:
    """The checkpoint ``config`` names, or the thread's newest one; None if there is none."""
    address = address_of(config)
    checkpoint_id = get_checkpoint_id(config)
    opened = yield from threads.thread(address, create=False)
    if opened is None:
        return None
    if checkpoint_id is None:
        latest = opened.index.latest_id()
        return None if latest is None else checkpoint_tuple(threads.serde, address, opened.index, latest, None)
    if checkpoint_id not in opened.index.checkpoints:
        return None
    return checkpoint_tuple(threads.serde, address, opened.index, checkpoint_id, config)


@attrs.define
class ListQuery:
    """One ``list`` call: what it matches and how many tuples it may still return."""

    wanted_id: str | None
    before_id: str | None
    filter: Mapping[str, Any] | None
    remaining: int | None

    @classmethod
    def of(
        cls,
        config: RunnableConfig | None,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> ListQuery:
        return cls(
            get_checkpoint_id(config) if config else None,
            get_checkpoint_id(before) if before else None,
            filter,
            limit,
        )

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def take(self, found: list[CheckpointTuple]) -> list[CheckpointTuple]:
        if self.remaining is not None:
            self.remaining -= len(found)
        return found


def addresses(threads: Threads, config: RunnableConfig | None) -> Operation[list[Address]]:
    """The streams a ``list`` call covers: one namespace, every namespace of a thread, or everything."""
    if config is None:
        found = (parse_session_id(info.session_id) for info in (yield Step("sessions")))
        return [a for a in found if a is not None]
    address = address_of(config)
    if config["configurable"].get("checkpoint_ns") is not None:
        return [address]
    namespaces = yield from threads.namespaces(address.root)
    return [address.root, *(Address(address.thread_id, ns) for ns in namespaces)]


def matching(threads: Threads, address: Address, query: ListQuery) -> Operation[list[CheckpointTuple]]:
    """The checkpoints of one stream that ``query`` matches, newest first, at most ``query.remaining``."""
    opened = yield from threads.thread(address, create=False)
    if opened is None:
        return []
    index = opened.index
    found: list[CheckpointTuple] = []
    for checkpoint_id in index.ids_newest_first():
        if query.remaining is not None and len(found) >= query.remaining:
            break
        if (query.wanted_id and checkpoint_id != query.wanted_id) or (
            query.before_id and checkpoint_id >= query.before_id
        ):
            continue
        if query.filter:
            metadata = threads.serde.loads_typed(index.checkpoints[checkpoint_id].metadata)
            if not all(value == metadata.get(key) for key, value in query.filter.items()):
                continue
        found.append(checkpoint_tuple(threads.serde, address, index, checkpoint_id, None))
    return found


def checkpoint_tuple(
    serde: SerializerProtocol,
    address: Address,
    index: CheckpointIndex,
    checkpoint_id: str,
    config: RunnableConfig | None,
) -> CheckpointTuple:
    stored = index.checkpoints[checkpoint_id]
    record = serde.loads_typed(stored.checkpoint)
    values = index.resolve(checkpoint_id, record["channel_versions"])
    return CheckpointTuple(
        config=config or checkpoint_config(address, checkpoint_id),
        checkpoint={**record, "channel_values": {ch: loads(serde, index, v) for ch, v in values.items()}},
        metadata=serde.loads_typed(stored.metadata),
        parent_config=checkpoint_config(address, stored.parent_id) if stored.parent_id else None,
        pending_writes=[
            (w.task_id, w.channel, serde.loads_typed(w.typed)) for w in index.ordered_writes(checkpoint_id)
        ],
    )


def checkpoint_config(address: Address, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": address.thread_id,
            "checkpoint_ns": address.checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


# --- writing ----------------------------------------------------------------------------------


def put(
    threads: Threads,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Operation[RunnableConfig]:
    """Store a checkpoint as one node under its parent's chain, with the values of the channels it changed.

    Lists that extend the parent's are stored as deltas (:mod:`lash_langgraph.lists`), planned
    on the session's index before anything is written (a value that cannot be serialized fails
    first), and planned again if the write had to reload the session (another writer's commit).
    """
    address = address_of(config)
    parent_id = config["configurable"].get("checkpoint_id")
    full_metadata = get_checkpoint_metadata(config, metadata)

    def encode(index: CheckpointIndex) -> StoredCheckpoint:
        deltas = plan_deltas(threads.serde, index, checkpoint, new_versions, parent_id)
        return encode_checkpoint(threads.serde, checkpoint, full_metadata, new_versions, parent_id, deltas)

    known = threads.cached(address) or (yield from threads.thread(address, create=False))
    planned_on = known.index if known is not None else CheckpointIndex()
    stored = encode(planned_on)

    def change(opened: OpenThread) -> bool:
        nonlocal planned_on, stored
        if opened.index is not planned_on and (opened.index.checkpoints or planned_on.checkpoints):
            planned_on, stored = opened.index, encode(opened.index)
        opened.append(
            opened.checkpoint_anchor(address, stored.checkpoint_id, parent_id), CHECKPOINT_TYPE, stored.body()
        )
        return True

    if address.checkpoint_ns:
        yield from threads.register_namespace(address)
    yield from threads.write(address, change)
    return checkpoint_config(address, checkpoint["id"])


def put_writes(
    threads: Threads, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
) -> Operation[None]:
    """Store a task's pending writes for a checkpoint; a ``(task_id, idx)`` already stored is kept."""
    address = address_of(config)
    checkpoint_id = config["configurable"].get("checkpoint_id")
    if not isinstance(checkpoint_id, str):
        raise lash.StoreError(
            f'put_writes needs the checkpoint\'s configurable["checkpoint_id"], got {checkpoint_id!r}'
        )
    batch = encode_writes(threads.serde, checkpoint_id, writes, task_id, task_path)

    def change(opened: OpenThread) -> bool:
        fresh = opened.index.unseen(batch)
        if not fresh.writes:
            return False
        opened.append(opened.writes_anchor(address, checkpoint_id), WRITES_TYPE, fresh.body())
        return True

    yield from threads.write(address, change)


def delete_thread(threads: Threads, thread_id: str) -> Operation[None]:
    """Delete the thread's sessions (every namespace), checkpoints and writes."""
    thread = thread_address(thread_id)
    for ns in (yield from threads.namespaces(thread)):
        yield from threads.delete(Address(thread.thread_id, ns))
    yield from threads.delete(thread)


def copy_thread(threads: Threads, source_thread_id: str, target_thread_id: str) -> Operation[None]:
    """Copy every namespace's checkpoints and writes to a thread that has none yet."""
    source, target = thread_address(source_thread_id), thread_address(target_thread_id)
    namespaces = ["", *(yield from threads.namespaces(source))]
    for ns in namespaces:
        existing = yield from threads.thread(Address(target.thread_id, ns), create=False)
        if existing is not None and existing.index.checkpoints:
            raise ThreadExistsError(
                f"copy_thread: target thread {target.thread_id!r} already has checkpoints"
                f"{f' in namespace {ns!r}' if ns else ''}; delete it first"
            )
    for ns in namespaces:
        opened = yield from threads.thread(Address(source.thread_id, ns), create=False)
        if opened is None:
            continue
        graph = _renamed(opened.session.graph, opened.index, target.thread_id)
        copy_address = Address(target.thread_id, ns)
        if ns:
            yield from threads.register_namespace(copy_address)
        yield from threads.write(copy_address, lambda t, graph=graph: t.replace_graph(graph))


def delete_for_runs(threads: Threads, run_ids: Sequence[str]) -> Operation[None]:
    """Delete the checkpoints (and their writes) whose metadata ``run_id`` is in ``run_ids``, in every thread."""
    doomed_runs = set(run_ids)
    if not doomed_runs:
        return
    for info in (yield Step("sessions")):
        address = parse_session_id(info.session_id)
        if address is None:
            continue
        opened = yield from threads.thread(address, create=False)
        if opened is None:
            continue
        doomed = {
            cid
            for cid, stored in opened.index.checkpoints.items()
            if threads.serde.loads_typed(stored.metadata).get("run_id") in doomed_runs
        }
        if doomed:
            yield from _keep_only(threads, address, set(opened.index.checkpoints) - doomed)


def prune(threads: Threads, thread_ids: Sequence[str], strategy: str) -> Operation[None]:
    """``keep_latest``: keep each namespace's newest checkpoint (self-contained); ``delete``: delete the threads."""
    if strategy not in PRUNE_STRATEGIES:
        raise UnsupportedPruneStrategy(f"unknown prune strategy {strategy!r} (valid: {', '.join(PRUNE_STRATEGIES)})")
    for thread_id in thread_ids:
        thread = thread_address(thread_id)
        if strategy == "delete":
            yield from delete_thread(threads, thread.thread_id)
            continue
        for ns in ["", *(yield from threads.namespaces(thread))]:
            address = Address(thread.thread_id, ns)
            opened = yield from threads.thread(address, create=False)
            latest = opened.index.latest_id() if opened is not None else None
            if latest is not None and len(opened.index.checkpoints) > 1:
                yield from _keep_only(threads, address, {latest})


def _keep_only(threads: Threads, address: Address, keep: set[str]) -> Operation[None]:
    def change(opened: OpenThread) -> bool:
        index = opened.index

        def versions(checkpoint_id: str) -> Mapping[str, Any]:
            return threads.serde.loads_typed(index.checkpoints[checkpoint_id].checkpoint)["channel_versions"]

        return opened.replace_graph(graph_keeping(opened.session.graph, index, keep, versions, threads.serde))

    yield from threads.write(address, change)


def _renamed(graph: lash.SessionGraph, index: CheckpointIndex, thread_id: str) -> lash.SessionGraph:
    """A copy of ``graph`` whose thread node names ``thread_id``."""
    nodes = []
    for node in graph.nodes.values():
        if node.node_id == index.thread_node_id:
            node = attrs.evolve(node, body={**node.body, "thread_id": thread_id})
        nodes.append(node)
    return lash.SessionGraph.from_nodes(nodes, graph.leaf_node_id)
