"""Bugs the model-based state machine (``lash.testing.stateful``) found, as examples on every built-in backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lash_memory import MemoryBackend
from lash_sqlite import SqliteBackend

from lash.errors import InvalidGraphError
from lash.graph import SessionGraph
from lash.model import ActivePath, Append, FullGraph, ReplaceFull
from lash.store import Backend
from lash.testing.builders import SessionWriter, chain


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend: Backend = MemoryBackend() if request.param == "memory" else SqliteBackend(path=tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def writer(backend: Backend) -> Iterator[SessionWriter]:
    store = backend.open_session("regression")
    assert store is not None
    yield SessionWriter(store)
    store.close()


def test_replace_full_whose_leaf_is_not_in_the_graph_is_refused(writer: SessionWriter) -> None:
    writer.append(*chain("a", "b"))
    graph = SessionGraph.from_nodes(chain("x"), "not-in-the-graph")
    with pytest.raises(InvalidGraphError):
        writer.commit(ReplaceFull(graph))
    read = writer.store.load_session(ActivePath())  # before the fix: the head's leaf dangled, this raised
    assert read is not None and read.head_revision == 1 and list(read.graph.nodes) == ["a", "b"]


def test_tombstone_updates_the_listed_user_message_count(backend: Backend, writer: SessionWriter) -> None:
    writer.append(*chain("root", "side"))  # both user messages
    writer.append(*chain("main", parent_id="root"))
    assert writer.store.tombstone_nodes(["side"]) == 1
    (info,) = backend.list_sessions()
    assert info.user_message_count == 2  # before the fix: 3 on backends that stage writes (memory)


def test_resent_tombstoned_node_cannot_become_the_leaf(writer: SessionWriter) -> None:
    root, side = chain("root", "side")
    writer.append(root, side)
    writer.append(*chain("main", parent_id="root"))
    writer.store.tombstone_nodes(["side"])
    with pytest.raises(InvalidGraphError):
        writer.commit(Append((side,), "side"))  # identical content, so not a clash; but it stays hidden
    read = writer.store.load_session(ActivePath())
    assert read is not None and read.head_revision == 2 and list(read.graph.nodes) == ["root", "main"]


def test_node_under_a_resent_tombstoned_node_is_refused(writer: SessionWriter) -> None:
    root, side = chain("root", "side")
    writer.append(root, side)
    writer.append(*chain("main", parent_id="root"))
    writer.store.tombstone_nodes(["side"])
    with pytest.raises(InvalidGraphError):
        writer.commit(Append((side, *chain("child", parent_id="side")), "child"))
    read = writer.store.load_session(FullGraph())
    assert read is not None and read.head_revision == 2 and list(read.graph.nodes) == ["root", "main"]
