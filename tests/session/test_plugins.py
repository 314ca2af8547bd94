"""Plugin snapshots (one blob keyed by plugin name) and protocol materialization."""

from __future__ import annotations

from typing import Any

import pytest
from session_helpers import Notes, Protocol, blob_puts

import lash
from lash.model import BlobKind


class Counter:
    """A second stateful plugin, to show snapshots of several plugins share one blob."""

    def __init__(self) -> None:
        self.count = 0

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return self.count

    @lash.hookimpl
    def lash_restore_session(self, session: lash.Session, snapshot: Any) -> None:
        self.count = snapshot


def test_snapshots_of_all_plugins_are_one_blob_keyed_by_plugin_name(place):
    notes, counter = Notes(), Counter()
    with place.open(notes, counter) as plugged:
        session = plugged.session("s")
        puts = blob_puts(session, BlobKind.PLUGIN_SNAPSHOT)
        notes.notes, counter.count = ["n"], 1
        session.commit()
        assert session.plugin_snapshot == lash.PluginSnapshot(
            1, {"session_helpers.Notes": {"notes": ["n"]}, f"{__name__}.Counter": 1}
        )
        assert len(puts) == 1


def test_snapshot_blob_is_rewritten_only_when_some_value_changed(place):
    counter = Counter()
    with place.open(counter) as plugged:
        session = plugged.session("s")
        puts = blob_puts(session, BlobKind.PLUGIN_SNAPSHOT)
        first = session.commit()
        session.append_message("user", "state unchanged")
        second = session.commit()
        counter.count = 2
        third = session.commit()
        assert len(puts) == 2
        assert first.manifest.plugin_snapshot_ref == second.manifest.plugin_snapshot_ref
        assert third.manifest.plugin_snapshot_revision == 2
        assert third.manifest.plugin_snapshot_ref != first.manifest.plugin_snapshot_ref


def test_plugin_mutating_its_state_in_place_is_still_detected(place):
    notes = Notes()
    with place.open(notes) as plugged:
        session = plugged.session("s")
        notes.notes.append("one")
        session.commit()
        notes.notes.append("two")  # the same list object the last snapshot returned
        session.commit()
        assert session.plugin_snapshot.revision == 2
        assert session.plugin_snapshot.entries["session_helpers.Notes"] == {"notes": ["one", "two"]}


def test_snapshot_is_restored_on_resume_with_the_plugins_own_value(place):
    first, second = Counter(), Counter()
    with place.open(first) as handle:
        first.count = 41
        handle.session("s").commit()
    with place.open(second) as handle:
        handle.session("s")
    assert second.count == 41


def test_materialize_runs_on_root_open_and_on_spawn_child(place):
    protocol = Protocol()
    with place.open(protocol) as plugged:
        root = plugged.session("root", plugin_options={"protocol": "acp"})
        child = root.spawn_child("child", plugin_options={"protocol": "sub"})
        assert protocol.calls == [("root", {"protocol": "acp"}, True), ("child", {"protocol": "sub"}, False)]
        assert root.protocol_turn_options == {"protocol": "acp", "root": True}
        assert child.protocol_turn_options == {"protocol": "sub", "root": False}
        assert child.meta().parent_session_id == "root"


def test_a_child_reopened_by_id_is_materialized_as_a_child(place):
    protocol = Protocol()
    with place.open(protocol) as plugged:
        plugged.session("root").spawn_child("child").commit()
    with place.open(protocol) as plugged:
        reopened = plugged.session("child")
        assert protocol.calls[-1] == ("child", {}, False)
        assert reopened.protocol_turn_options["root"] is False


def test_protocol_turn_options_are_on_every_frame_persisted_and_resumed(place):
    with place.open(Protocol(), compaction={"strategy": "keep-recent", "options": {"keep_last": 1}}) as handle:
        session = handle.session("s", plugin_options={"protocol": "acp"})
        session.append_message("user", "one")
        session.append_message("user", "two")
        assert session.compact() is True
        options = {"protocol": "acp", "root": True}
        assert [f.protocol_turn_options for f in session.frames] == [options, options]
        assert session.turn_state.mode_turn_options == options
    with place.open() as handle:  # no plugin: what was stored comes back as it was
        resumed = handle.session("s")
        assert resumed.protocol_turn_options == options
        assert [f.protocol_turn_options for f in resumed.frames] == [options, options]


def test_snapshot_that_cannot_be_stored_raises_and_leaves_the_head_unchanged(place):
    class Broken:
        @lash.hookimpl
        def lash_snapshot_session(self, session: lash.Session) -> Any:
            return {"handle": object()}

    with place.open(Broken()) as plugged:
        session = plugged.session("s")
        session.append_message("user", "hi")
        with pytest.raises(lash.SerializationError, match="Broken"):
            session.commit()
        assert session.store.load_session() is None
        assert session.head_revision is None
