"""Bad input gets a clear lash error and never changes the stored head."""

from __future__ import annotations

import pytest

import lash


def _committed(handle: lash.Lash) -> lash.Session:
    session = handle.session("s")
    session.append_message("user", "kept")
    session.commit()
    return session


def test_committing_a_closed_session_is_refused(handle):
    session = _committed(handle)
    before = session.store.load_session()
    session.append_message("user", "never committed")
    session.close()
    with pytest.raises(lash.SessionClosedError, match="'s' is closed"):
        session.commit()
    assert handle.session("s").store.load_session() == before


def test_checkout_of_an_unknown_node_is_an_invalid_graph_error(place):
    with place.open() as handle:
        session = _committed(handle)
        leaf = session.graph.leaf_node_id
        with pytest.raises(lash.InvalidGraphError, match="no-such-node"):
            session.checkout("no-such-node")
        assert session.graph.leaf_node_id == leaf
    with place.open() as handle:
        session = handle.session("s", residency="active_path")
        with pytest.raises(lash.InvalidGraphError, match="no-such-node"):
            session.checkout("no-such-node")
        assert session.graph.leaf_node_id == leaf


def test_node_body_that_is_not_msgpackable_is_refused_at_append(handle):
    session = _committed(handle)
    before = session.store.load_session()
    with pytest.raises(lash.SerializationError, match="message node body cannot be stored"):
        session.append_message("user", {"set": {1, 2}})
    with pytest.raises(lash.SerializationError):
        session.append_event("e", object())
    assert not session.dirty
    session.commit()
    after = session.store.load_session()
    assert (after.graph, after.head_revision) == (before.graph, before.head_revision + 1)


def test_execution_state_and_usage_must_have_the_right_types(handle):
    session = handle.session("s")
    with pytest.raises(TypeError, match="bytes"):
        session.set_execution_state("text")
    with pytest.raises(TypeError, match="TokenUsage"):
        session.record_usage("agent", "m", {"input_tokens": 1})
    with pytest.raises(TypeError, match="SessionConfig"):
        session.config = {"provider_id": "p"}
    assert not session.dirty
