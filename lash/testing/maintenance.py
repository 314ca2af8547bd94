"""Maintenance and integrity: tombstones, vacuum, blob GC, tampered blobs."""

from __future__ import annotations

import pytest

from lash.errors import BlobIntegrityError, InvalidGraphError
from lash.model import ActivePath, FullGraph, HydratedCheckpoint, PluginSnapshot, ToolState, TurnState
from lash.store import Backend
from lash.testing.base import BackendFixtures
from lash.testing.blob_store import Tamper
from lash.testing.builders import SessionWriter, chain


def _checkpoint(turn: int, tag: str) -> HydratedCheckpoint:
    """A checkpoint whose three snapshot blobs (and so its manifest) are unique to ``turn``/``tag``."""
    return HydratedCheckpoint(
        TurnState(turn),
        ToolState(turn, ({"name": f"{tag}-tool-{turn}"},)),
        PluginSnapshot(turn, {"plugin": f"{tag}-{turn}"}),
        f"{tag} execution state {turn}".encode(),
    )


class MaintenanceTests(BackendFixtures):
    """Tombstones, vacuum, GC and blob integrity, in every backend."""

    def test_tombstoned_nodes_are_hidden_and_vacuum_counts_them(self, writer: SessionWriter) -> None:
        writer.append(*chain("root", "old1", "old2"))
        writer.append(*chain("a", "b", parent_id="root"))
        assert writer.store.tombstone_nodes(["old1", "old2"]) == 2
        read = writer.store.load_session(FullGraph())
        assert read is not None and list(read.graph.nodes) == ["root", "a", "b"]
        assert writer.store.load_node("old1") is None
        assert writer.store.vacuum().removed_node_count == 2
        assert writer.store.vacuum().removed_node_count == 0
        read = writer.store.load_session(ActivePath())
        assert read is not None and list(read.graph.nodes) == ["root", "a", "b"]

    def test_tombstoning_a_node_on_the_active_path_is_refused(self, writer: SessionWriter) -> None:
        writer.append(*chain("root", "side"))
        writer.append(*chain("a", "b", parent_id="root"))
        with pytest.raises(InvalidGraphError):
            writer.store.tombstone_nodes(["side", "a"])
        assert writer.store.load_node("a") is not None
        assert writer.store.load_node("side") is not None
        assert writer.store.vacuum().removed_node_count == 0

    def test_gc_deletes_exactly_the_unreachable_blobs(self, writer: SessionWriter) -> None:
        blobs = writer.store.blobs
        writer.append(*chain("a"), checkpoint=_checkpoint(1, "s"))
        head = writer.append(*chain("b", parent_id="a"), checkpoint=_checkpoint(2, "s"))
        garbage = blobs.put(b"nobody references this")
        roots = {head.checkpoint_ref, *head.manifest.blob_refs()}
        assert len(roots) == 4
        assert garbage in set(blobs.refs())
        report = writer.store.gc_unreachable()
        assert set(blobs.refs()) == roots
        assert (report.root_count, report.retained_blob_count, report.deleted_blob_count) == (4, 4, 5)
        read = writer.store.load_session()
        assert read is not None and read.checkpoint == _checkpoint(2, "s")

    def test_backend_gc_keeps_blobs_of_every_session(self, backend: Backend) -> None:
        heads = []
        for tag in ("left", "right"):
            store = self.open_store(backend, f"gc-{tag}")
            try:
                writer = SessionWriter(store)
                writer.append(*chain(f"{tag}-a"), checkpoint=_checkpoint(1, tag))
                head = writer.append(*chain(f"{tag}-b", parent_id=f"{tag}-a"), checkpoint=_checkpoint(2, tag))
                heads.append((store.session_id, head))
            finally:
                store.close()
        report = backend.gc()
        assert (report.root_count, report.retained_blob_count, report.deleted_blob_count) == (8, 8, 8)
        for session_id, head in heads:
            store = self.open_store(backend, session_id, create=False)
            try:
                assert all(store.blobs.has(ref) for ref in (head.checkpoint_ref, *head.manifest.blob_refs()))
                assert store.load_session() is not None
            finally:
                store.close()

    def test_tampered_blob_fails_integrity_on_get_and_on_load(self, writer: SessionWriter, tamper: Tamper) -> None:
        result = writer.append(*chain("a"), checkpoint=HydratedCheckpoint(execution_state=b"precious state"))
        ref = result.manifest.execution_state_ref
        assert ref is not None
        tamper(ref)
        with pytest.raises(BlobIntegrityError) as info:
            writer.store.blobs.get(ref)
        assert info.value.ref == ref
        with pytest.raises(BlobIntegrityError):
            writer.store.load_session()
