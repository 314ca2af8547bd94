"""``lash.open()`` and the :class:`lash.Lash` handle: sessions, listing, delete, gc, close."""

from __future__ import annotations

import pytest

import lash


def test_open_returns_a_context_manager_that_closes_its_sessions(place):
    with place.open() as handle:
        assert isinstance(handle, lash.Lash)
        session = handle.session("a")
    assert session.closed
    with pytest.raises(lash.SessionClosedError):
        handle.session("b")
    with pytest.raises(lash.SessionClosedError):
        session.append_message("user", "too late")


def test_session_is_created_on_first_open_and_listed_with_its_first_user_message(handle):
    session = handle.session("picker")
    session.append_message("system", "be brief")
    session.append_message("user", "what is lash?")
    session.append_message("user", "and why?")
    session.commit()
    [info] = [i for i in handle.sessions() if i.session_id == "picker"]
    assert (info.first_user_message, info.user_message_count, info.parent_session_id) == ("what is lash?", 2, None)


def test_delete_removes_the_session_and_closes_it(place):
    with place.open() as handle:
        session = handle.session("doomed")
        session.append_message("user", "bye")
        session.commit()
        assert handle.delete("doomed") is True
        assert session.closed
        assert "doomed" not in [i.session_id for i in handle.sessions()]
        assert handle.delete("doomed") is False
    with place.open() as handle:
        assert handle.session("doomed").head_revision is None


def test_gc_keeps_every_blob_a_head_references(place):
    with place.open() as handle:
        session = handle.session("gc")
        session.set_execution_state(b"first")
        session.commit()
        session.set_execution_state(b"second")
        session.commit()
        report = handle.gc()
        assert report.root_count >= 2  # manifest + execution state
        assert report.deleted_blob_count >= 1  # the first execution state and manifest
    with place.open() as handle:
        assert handle.session("gc").execution_state == b"second"


def test_invalid_session_id_is_a_lash_error(handle):
    with pytest.raises(lash.InvalidSessionId):
        handle.session("")


def test_unknown_residency_is_refused(handle):
    with pytest.raises(ValueError, match="residency"):
        handle.session("r", residency="everything")
