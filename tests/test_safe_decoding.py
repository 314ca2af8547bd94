"""A record or blob that cannot be decoded raises a lash error naming the session, the node or
ref, and the reason; it is never replaced, skipped, coerced or dropped.

Every test damages stored bytes through the backend's own primitives (the storage
transaction and the raw blob storage), never through lash's writers, then reads.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from lash_memory import MemoryBackend

import lash
from lash import codec
from lash.blobs import BlobProfile, seal
from lash.cli.archive import export_session, read_archive
from lash.codec import SCHEMA_VERSION, pack, unpack
from lash.errors import BlobIntegrityError, CorruptRecordError, SchemaVersionError
from lash.model import ActivePath, BlobKind, FullGraph, HydratedCheckpoint, ToolState, blob_ref_for
from lash.store import StandardSessionStore, StorageBackend, StorageTransaction, StoredHead, StoredNode
from lash.testing import SessionWriter, chain, usage

SESSION = "fragile"
GARBAGE = b"\xc1\xc1 not msgpack"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    if request.param == "sqlite":
        if importlib.util.find_spec("lash_sqlite") is None:
            pytest.skip("needs lash-sqlite")
        from lash_sqlite import SqliteBackend

        built: StorageBackend = SqliteBackend(path=tmp_path / "sessions")
    else:
        built = MemoryBackend()
    yield built
    built.close()


@pytest.fixture
def store(backend: StorageBackend) -> Iterator[StandardSessionStore]:
    """A session n1 → n2 → n3 with usage, a tool state and an execution state."""
    store = backend.open_session(SESSION)
    assert store is not None
    SessionWriter(store).append(
        *chain("n1", "n2", "n3"),
        usage_deltas=[usage("agent", "model-x", 10, 5)],
        checkpoint=HydratedCheckpoint(tool_state=ToolState(1, ({"name": "grep"},)), execution_state=b"state"),
    )
    yield store
    store.close()


def damage(store: StandardSessionStore, change: Callable[[StorageTransaction], None]) -> None:
    with store.storage.transaction(write=True) as txn:
        change(txn)


def replace_node(store: StandardSessionStore, node_id: str, data: bytes) -> None:
    """Rewrite one node record through the primitives (clear, then insert every node again)."""
    parents = {"n1": None, "n2": "n1", "n3": "n2"}
    with store.storage.transaction(write=False) as txn:
        stored = txn.read_nodes(list(parents))
    rows = [StoredNode(nid, parent, data if nid == node_id else stored[nid]) for nid, parent in parents.items()]
    damage(store, lambda txn: (txn.clear_nodes(), txn.insert_nodes(rows)))


def node_payload(store: StandardSessionStore, node_id: str) -> dict:
    with store.storage.transaction(write=False) as txn:
        return unpack(txn.read_nodes([node_id])[node_id])[1]


def test_a_corrupt_head_raises_naming_the_session_and_is_never_skipped(
    backend: StorageBackend, store: StandardSessionStore
) -> None:
    damage(store, lambda txn: txn.write_head(1, GARBAGE))
    with pytest.raises(CorruptRecordError, match=f"head of session '{SESSION}'.*not valid msgpack"):
        store.load_session()
    with pytest.raises(CorruptRecordError, match=SESSION):
        backend.list_sessions()  # listing does not quietly leave the session out


def test_a_head_from_a_newer_lash_raises_a_schema_error_naming_the_session(store: StandardSessionStore) -> None:
    damage(store, lambda txn: txn.write_head(1, pack([SCHEMA_VERSION + 1, {"from": "the future"}])))
    with pytest.raises(SchemaVersionError, match=f"head of session '{SESSION}'") as caught:
        store.load_session()
    assert caught.value.found == SCHEMA_VERSION + 1


def test_a_corrupt_node_on_the_path_names_its_id(store: StandardSessionStore) -> None:
    replace_node(store, "n2", GARBAGE)
    with pytest.raises(CorruptRecordError, match=f"node 'n2' of session '{SESSION}'.*not valid msgpack"):
        store.load_session(ActivePath())
    with pytest.raises(CorruptRecordError, match=f"node stored after node 'n1' in session '{SESSION}'"):
        store.load_session(FullGraph())  # a full read names where it is: nothing is dropped from the graph


def test_a_node_from_a_newer_lash_is_a_schema_error_not_a_gap(store: StandardSessionStore) -> None:
    replace_node(store, "n3", pack([SCHEMA_VERSION + 1, node_payload(store, "n3")]))
    with pytest.raises(SchemaVersionError, match=f"node 'n3' of session '{SESSION}'"):
        store.load_session(ActivePath())


def test_a_node_field_of_the_wrong_type_is_reported_not_coerced(store: StandardSessionStore) -> None:
    replace_node(store, "n2", pack([SCHEMA_VERSION, {**node_payload(store, "n2"), "created_at": "yesterday"}]))
    with pytest.raises(CorruptRecordError, match=r"node 'n2'.*expected float, got str @ \$.created_at"):
        store.load_session(ActivePath())


def test_a_node_field_this_lash_does_not_know_is_reported_not_dropped(store: StandardSessionStore) -> None:
    replace_node(store, "n1", pack([SCHEMA_VERSION, {**node_payload(store, "n1"), "signature": "abc"}]))
    with pytest.raises(CorruptRecordError, match=r"node 'n1'.*signature"):
        store.load_session(ActivePath())


def test_a_corrupt_ledger_row_names_the_session_and_its_key(store: StandardSessionStore) -> None:
    damage(store, lambda txn: txn.write_ledger({("agent", "model-x"): GARBAGE}))
    with pytest.raises(CorruptRecordError, match=f"ledger entry \\('agent', 'model-x'\\) of session '{SESSION}'"):
        store.load_session()


def test_a_corrupt_meta_record_names_the_session(store: StandardSessionStore) -> None:
    damage(store, lambda txn: txn.write_meta(GARBAGE))
    with pytest.raises(CorruptRecordError, match=f"meta of session '{SESSION}'"):
        store.load_meta()


def overwrite_blob(store: StandardSessionStore, ref: str, envelope: bytes) -> None:
    storage = store.blobs.storage  # type: ignore[attr-defined]
    storage.delete([ref])
    storage.write(ref, envelope)


def exec_ref(store: StandardSessionStore) -> str:
    head = store.load_head()
    assert head is not None and head.manifest.execution_state_ref is not None
    return head.manifest.execution_state_ref


def test_a_blob_whose_bytes_changed_names_the_ref_and_the_session(store: StandardSessionStore) -> None:
    ref = exec_ref(store)
    overwrite_blob(store, ref, seal(b"other bytes", BlobKind.EXECUTION_STATE, (), BlobProfile.LOW_LATENCY))
    with pytest.raises(BlobIntegrityError, match=f"{ref}.*sha256.*session '{SESSION}'") as caught:
        store.load_session()
    assert caught.value.ref == ref


def test_a_blob_envelope_from_a_newer_lash_names_the_ref_and_the_session(store: StandardSessionStore) -> None:
    ref = exec_ref(store)
    overwrite_blob(store, ref, pack({"v": 99, "kind": "execution_state", "hints": [], "compression": "none"}))
    with pytest.raises(SchemaVersionError, match=f"session '{SESSION}' {ref}"):
        store.load_session()


def test_a_blob_envelope_with_damaged_hints_is_an_integrity_error(store: StandardSessionStore) -> None:
    ref = exec_ref(store)
    envelope = {"v": 1, "kind": "execution_state", "hints": 7, "compression": "none", "content": b"state"}
    overwrite_blob(store, ref, pack(envelope))
    with pytest.raises(BlobIntegrityError, match="hints are damaged"):
        store.load_session()


def test_a_stored_tool_without_a_name_is_reported_not_a_key_error(store: StandardSessionStore) -> None:
    content = pack([SCHEMA_VERSION, {"generation": 1, "tools": [{"description": "nameless"}], "plugin_tool_names": []}])
    ref = blob_ref_for(content)
    store.blobs.storage.write(ref, seal(content, BlobKind.TOOL_STATE, (), BlobProfile.LOW_LATENCY))  # type: ignore[attr-defined]
    with store.storage.transaction(write=False) as txn:
        stored = codec.decode(txn.read_head() or b"", StoredHead)
    manifest = attrs.evolve(stored.head.manifest, tool_state_ref=ref)
    head = attrs.evolve(stored, head=attrs.evolve(stored.head, manifest=manifest))
    damage(store, lambda txn: txn.write_head(head.head.revision, codec.encode(head)))
    with pytest.raises(CorruptRecordError, match=rf"tool_state blob of session '{SESSION}' {ref}.*no str 'name'"):
        store.load_session()


def test_resuming_a_damaged_session_raises_instead_of_healing_around_it(tmp_path: Path) -> None:
    if importlib.util.find_spec("lash_sqlite") is None:
        pytest.skip("needs lash-sqlite")
    config = {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "s")}}}
    with lash.open(config) as handle:
        session = handle.session(SESSION)
        root = session.append_message("user", "one")
        leaf = session.append_message("user", "two")
        session.commit()
        store = session.store
        assert isinstance(store, StandardSessionStore)
        with store.storage.transaction(write=False) as txn:
            kept = txn.read_nodes([leaf])[leaf]
        rows = [StoredNode(root, None, GARBAGE), StoredNode(leaf, root, kept)]
        damage(store, lambda txn: (txn.clear_nodes(), txn.insert_nodes(rows)))
        session.close()
    for residency in ("keep_all", "active_path"):
        with lash.open(config) as handle, pytest.raises(CorruptRecordError, match=f"node .* session '{SESSION}'"):
            handle.session(SESSION, residency=residency)


def test_an_archive_with_a_damaged_record_names_the_session(store: StandardSessionStore, tmp_path: Path) -> None:
    with lash.open({"store": {"backend": "memory"}}) as handle:
        session = handle.session("exported")
        session.append_message("user", "hi")
        session.commit()
        data = export_session(handle, "exported")
    archive = unpack(data)
    archive["graph"]["nodes"][0]["node_id"] = 42
    with pytest.raises(CorruptRecordError, match="archive of session 'exported'"):
        read_archive(pack(archive))
