"""Branching with ``checkout()``, ``active_path`` residency and ``prune()``."""

from __future__ import annotations

import pytest
from session_helpers import stored_node_count

import lash


def _fork(session: lash.Session) -> tuple[str, str, str]:
    """root → old; then checkout(root) → new. Returns (root, old, new), all committed."""
    root = session.append_message("user", "root")
    old = session.append_message("assistant", "old answer")
    session.commit()
    session.checkout(root)
    new = session.append_message("assistant", "new answer")
    session.commit()
    return root, old, new


def test_checkout_continues_from_an_earlier_node_on_a_new_branch(place):
    with place.open() as handle:
        session = handle.session("s")
        root, old, new = _fork(session)
        assert session.graph.nodes[new].parent_id == root
        assert [m["content"] for m in session.messages()] == ["root", "new answer"]
    with place.open() as handle:
        resumed = handle.session("s")
        assert resumed.graph.leaf_node_id == new
        assert set(resumed.graph.nodes) == {root, old, new}
        resumed.checkout(old)  # back to the first branch, committed as the leaf
        resumed.commit()
    with place.open() as handle:
        assert [m["content"] for m in handle.session("s").messages()] == ["root", "old answer"]


def test_checkout_alone_moves_the_stored_leaf_with_an_unchanged_commit(handle, spy):
    session = handle.session("s")
    root, _, _ = _fork(session)
    calls = spy(session)
    session.checkout(root)
    session.commit()
    assert calls.last.graph == lash.Unchanged(root)


def test_active_path_residency_keeps_only_the_path_and_loads_another_branch_on_checkout(place):
    with place.open() as handle:
        root, old, new = _fork(handle.session("s"))
    with place.open() as handle:
        session = handle.session("s", residency="active_path")
        assert set(session.graph.nodes) == {root, new}
        session.checkout(old)
        assert set(session.graph.nodes) == {root, old}
        reply = session.append_message("user", "continue the old branch")
        session.commit()
    with place.open() as handle:
        resumed = handle.session("s", residency="active_path")
        assert list(resumed.graph.nodes) == [root, old, reply]


def test_prune_tombstones_orphaned_branches_vacuums_and_collects_blobs(place):
    with place.open() as handle:
        session = handle.session("s")
        session.set_execution_state(b"v1")
        root, _old, new = _fork(session)
        session.set_execution_state(b"v2")
        session.commit()
        report = session.prune()
        assert (report.tombstoned_node_count, report.removed_node_count) == (1, 1)
        assert report.gc.deleted_blob_count >= 1  # the v1 execution state, old manifests
        assert stored_node_count(session) == 2
        assert set(session.graph.nodes) == {root, new}
    with place.open() as handle:
        resumed = handle.session("s")
        assert set(resumed.graph.nodes) == {root, new}
        assert resumed.execution_state == b"v2"


def test_prune_with_uncommitted_graph_changes_is_refused(handle):
    session = handle.session("s")
    root, _, _ = _fork(session)
    session.checkout(root)
    with pytest.raises(lash.LashError, match="commit before prune"):
        session.prune()
    session.commit()
    session.append_message("user", "pending")
    with pytest.raises(lash.LashError, match="commit before prune"):
        session.prune()
