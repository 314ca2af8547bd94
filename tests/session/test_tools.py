"""The tool registry: generation, blob rewrites, plugin-contributed tools, resume."""

from __future__ import annotations

import pytest
from session_helpers import Notes, blob_puts

import lash
from lash.model import BlobKind


def test_generation_increases_only_when_the_tool_set_changes(handle):
    tools = handle.session("s").tools
    tools.register({"name": "read"})
    tools.register({"name": "write", "description": "w"})
    assert tools.generation == 2
    tools.register({"name": "read"})  # same spec again
    tools.unregister("absent")
    tools.replace([{"name": "write", "description": "w"}, {"name": "read"}])  # same set, other order
    assert tools.generation == 2
    tools.register({"name": "read", "description": "now documented"})
    assert tools.generation == 3
    assert tools.names() == ["read", "write"]


def test_tool_state_blob_is_rewritten_only_when_the_generation_changed(handle):
    session = handle.session("s")
    puts = blob_puts(session, BlobKind.TOOL_STATE)
    session.tools.register({"name": "read"})
    first = session.commit()
    session.append_message("user", "no tool change")
    second = session.commit()
    session.tools.register({"name": "write"})
    third = session.commit()
    assert len(puts) == 2
    assert first.manifest.tool_state_ref == second.manifest.tool_state_ref != third.manifest.tool_state_ref
    assert third.manifest.tool_state_generation == 2


def test_plugins_contribute_tools_and_withdrawing_one_bumps_the_generation(place):
    notes = Notes()
    with place.open(notes) as plugged:
        session = plugged.session("s")
        assert len(session.tools) == 0
        notes.notes = ["a", "b"]
        session.commit()
        assert session.tools.names() == ["note_a", "note_b"]
        generation = session.tools.generation
        session.commit()
        assert session.tools.generation == generation
        notes.notes = ["a"]
        session.commit()
        assert session.tools.names() == ["note_a"]
        assert session.tools.generation == generation + 1


def test_tools_are_restored_on_resume_and_a_tool_its_plugin_no_longer_offers_is_dropped(place):
    notes = Notes()
    with place.open(notes) as handle:
        session = handle.session("s")
        session.tools.register({"name": "app_tool", "schema": {"type": "object"}})
        notes.notes = ["x"]
        session.commit()
        stored = session.tools.state()
    with place.open(Notes()) as handle:  # a fresh plugin restores the note and offers its tool again
        session = handle.session("s")
        assert session.tools.state() == stored
    with place.open() as handle:  # the plugin is gone: only the application's tool remains
        session = handle.session("s")
        assert session.tools.names() == ["app_tool"]
        assert session.tools.generation == stored.generation + 1


def test_a_tool_spec_that_cannot_be_stored_is_refused_when_registered(handle):
    tools = handle.session("s").tools
    with pytest.raises(lash.SerializationError, match="'bad'"):
        tools.register({"name": "bad", "callback": object()})
    with pytest.raises(lash.LashError, match="name"):
        tools.register({"description": "nameless"})
    assert tools.generation == 0
