"""The ``s3`` backend against in-process moto: the conditional put, segments, caching, layout.

The conformance suite proves the contract; these tests pin down how the backend keeps it
on S3: a lost compare-and-swap leaves nothing visible, only segments the state lists are
read, a reader fetches each immutable segment once, and ``vacuum`` folds the log into one
base segment.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from lash_s3 import S3Backend, s3_backend
from lash_s3.sessions import S3SessionStorage

import lash
from lash.model import ActivePath, FullGraph, HydratedCheckpoint
from lash.store import StoredNode
from lash.testing import SessionWriter, chain, message


@pytest.fixture
def backend(mocked_s3: Any, bucket: str) -> S3Backend:
    return s3_backend(bucket=bucket, prefix="team", create_bucket=True, gc_grace_seconds=0)


def keys(backend: S3Backend, under: str = "") -> list[str]:
    return [obj.key for obj in backend.objects.list(under)]


def segment_keys(backend: S3Backend, session_id: str) -> list[str]:
    return keys(backend, backend.layout(session_id).nodes)


def storage_of(backend: S3Backend, session_id: str) -> S3SessionStorage:
    storage = backend._open_storage(session_id, create=True)
    assert storage is not None
    return storage


def count_calls(backend: S3Backend) -> Counter[str]:
    calls: Counter[str] = Counter()
    backend.objects.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def test_entry_point_module_does_not_import_boto3() -> None:
    script = (
        "import sys, lash_s3, lash.plugins\n"
        "lash.plugins.PluginManager()\n"
        "assert 's3' in lash.plugins.PluginManager().backends\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 's3transfer'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_session_lives_under_its_hashed_prefix_and_blobs_under_sha256(backend: S3Backend) -> None:
    with lash.open({"store": {"backend": "s3-test"}}, plugins=[Registered(backend)]) as handle:
        session = handle.session("a/../weird id")
        session.append_message("user", "hello")
        session.set_execution_state(b"state")
        session.commit()
    root = backend.layout("a/../weird id").root
    assert root.startswith("team/sessions/") and len(root.split("/")) == 4
    stored = keys(backend)
    assert f"{root}state" in stored and len(segment_keys(backend, "a/../weird id")) == 1
    assert all(k.startswith((root, "team/sha256/")) for k in stored)
    assert any(k.startswith("team/sha256/") for k in stored)


def test_lost_compare_and_swap_raises_conflict_and_leaves_nothing_visible(backend: S3Backend) -> None:
    winner, loser = storage_of(backend, "s"), storage_of(backend, "s")
    with (
        pytest.raises(lash.HeadRevisionConflict) as info,
        loser.transaction(write=True) as late,
        winner.transaction(write=True) as early,  # innermost: it lands first
    ):
        assert early.read_head() is None and late.read_head() is None
        early.insert_nodes([StoredNode("w", None, b"winner node")])
        early.write_head(1, b"winner head")
        late.insert_nodes([StoredNode("l", None, b"loser node")])
        late.write_head(1, b"loser head")
    assert (info.value.expected, info.value.actual) == (None, 1)
    reader = storage_of(backend, "s")
    with reader.transaction(write=False) as txn:
        assert txn.read_head() == b"winner head"
        assert txn.read_all_nodes() == [b"winner node"]
        assert txn.read_nodes(["l"], include_tombstoned=True) == {}
    assert len(segment_keys(backend, "s")) == 1  # the loser's segment was removed


def test_segment_not_listed_by_the_state_is_ignored_and_vacuumed(backend: S3Backend) -> None:
    store = backend.open_session("s")
    assert store is not None
    SessionWriter(store).append(*chain("a", "b"))
    stray = backend.layout("s").segment("000000000002-orphan")
    orphan = storage_of(backend, "s").objects
    orphan.put(stray, b"a segment whose commit never landed")
    read = store.load_session(FullGraph())
    assert read is not None and list(read.graph.nodes) == ["a", "b"]
    assert store.vacuum().removed_node_count == 0
    assert stray not in segment_keys(backend, "s")


def test_reader_fetches_each_segment_once_then_only_new_ones(backend: S3Backend) -> None:
    store = backend.open_session("s")
    assert store is not None
    writer = SessionWriter(store)
    writer.append(*chain("a", "b"))
    writer.append(message("c", "b"))
    reader = backend.open_session("s", create=False)
    assert reader is not None
    calls = count_calls(backend)
    assert list(reader.load_session(ActivePath()).graph.nodes) == ["a", "b", "c"]  # type: ignore[union-attr]
    assert calls["GetObject"] == 3  # the state and two segments
    calls.clear()
    writer.append(message("d", "c"))
    calls.clear()
    assert list(reader.load_session(ActivePath()).graph.nodes) == ["a", "b", "c", "d"]  # type: ignore[union-attr]
    assert calls["GetObject"] == 2  # the state and the one new segment


def test_commit_costs_one_segment_and_one_conditional_state_put(backend: S3Backend) -> None:
    store = backend.open_session("s")
    assert store is not None
    writer = SessionWriter(store)
    writer.append(*chain(*(f"n{i}" for i in range(50))))
    calls = count_calls(backend)
    writer.append(message("next", "n49"), checkpoint=HydratedCheckpoint(execution_state=b"state of this turn"))
    # GET state (the 50 earlier nodes come from the cache); HEAD + PUT each new blob (execution
    # state, manifest); PUT the segment; conditional PUT of the state.
    assert calls == {"GetObject": 1, "HeadObject": 2, "PutObject": 4}


def test_vacuum_folds_the_log_into_one_base_segment(backend: S3Backend) -> None:
    store = backend.open_session("s")
    assert store is not None
    writer = SessionWriter(store)
    writer.append(*chain("root", "old"))
    writer.append(*chain("a", parent_id="root"))
    writer.append(message("b", "a"))
    before = store.load_session(FullGraph())
    store.tombstone_nodes(["old"])
    assert len(segment_keys(backend, "s")) == 3
    assert store.vacuum().removed_node_count == 1
    assert len(segment_keys(backend, "s")) == 1
    fresh = backend.open_session("s", create=False)
    assert fresh is not None
    read = fresh.load_session(FullGraph())
    assert read is not None and before is not None
    assert list(read.graph.nodes) == ["root", "a", "b"]
    assert read.head_revision == before.head_revision


def test_delete_session_removes_every_object_but_shared_blobs(backend: S3Backend) -> None:
    store = backend.open_session("doomed")
    assert store is not None
    SessionWriter(store).append(*chain("a"))
    store.close()
    assert backend.delete_session("doomed") is True
    assert keys(backend, backend.layout("doomed").root) == []
    assert any(k.startswith("team/sha256/") for k in keys(backend))


def test_deleting_the_state_behind_lash_fails_the_commit_with_a_lash_error(backend: S3Backend) -> None:
    store = backend.open_session("s")
    assert store is not None
    writer = SessionWriter(store)
    writer.append(*chain("a"))
    backend.objects.delete([backend.layout("s").state])
    with pytest.raises(lash.LashError, match="state"):
        writer.append(message("b", "a"))


class Registered:
    """Registers an already-built backend as ``s3-test``."""

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend

    @lash.hookimpl
    def lash_register_backends(self, register: Any) -> None:
        register("s3-test", lambda options: self.backend)
