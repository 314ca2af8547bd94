"""lash-summarize, installed as a distribution, selected in TOML and used by ``compact()``."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from lash_summarize import SUMMARY_PREFIX, Summarize, first_sentence

import lash

TOML = """
[store]
backend = "memory"

[compaction]
strategy = "summarize"
options = {{ keep_last = {keep_last}, max_chars = 40 }}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "lash.toml"
    path.write_text(TOML.format(keep_last=2))
    return path


def test_summarize_is_found_through_its_installed_entry_point(config_file):
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="lash") if ep.name == "summarize"]
    assert (entry_point.value, entry_point.dist.name) == ("lash_summarize", "lash-summarize")
    with lash.open(config_file) as handle:
        assert handle.plugin_manager.compactors.get("summarize").plugin == "summarize"
        assert handle.plugin_manager.distributions()["summarize"][0] == "lash-summarize"
        assert handle.compactor == Summarize(keep_last=2, max_chars=40)


def test_compact_folds_older_messages_into_one_summary_note_and_keeps_the_last_n(config_file):
    with lash.open(config_file) as handle:
        session = handle.session("agent")
        session.append_message("system", "You are terse.")
        session.append_message("user", "Plan the migration. Then list the risks in detail.")
        session.append_message("assistant", "First we copy the tables! After that we switch traffic.")
        session.append_message("user", "What about rollback?")
        session.append_message("assistant", "Keep the old database for a week.")
        assert session.compact("decisions") is True
        system, note, *recent = session.messages()
        assert system == {"role": "system", "content": "You are terse."}
        assert note == {
            "role": "system",
            "content": "\n".join(
                [
                    SUMMARY_PREFIX,
                    "(focus: decisions)",
                    "- user: Plan the migration.",
                    "- assistant: First we copy the tables!",
                ]
            ),
            "summarized": 2,
        }
        assert [m["content"] for m in recent] == ["What about rollback?", "Keep the old database for a week."]
        assert session.current_frame.reason == "compaction"
        assert session.compact() is False  # only the kept messages follow the note


def test_a_second_compaction_folds_the_earlier_note_into_one(config_file):
    with lash.open(config_file) as handle:
        session = handle.session("agent")
        for n in range(3):
            session.append_message("user", f"Question {n}. Details.")
        assert session.compact() is True
        for n in range(3, 5):
            session.append_message("user", f"Question {n}. Details.")
        assert session.compact() is True
        note, *recent = session.messages()
        assert note["summarized"] == 3
        assert note["content"].splitlines()[1:] == [f"- user: Question {n}." for n in range(3)]
        assert [m["content"] for m in recent] == ["Question 3. Details.", "Question 4. Details."]
        history = [n.body["content"] for n in session.graph.active_path() if n.kind == "message"]
        assert history[:3] == [f"Question {n}. Details." for n in range(3)]  # the graph keeps everything


def test_summary_is_deterministic_and_bounded():
    long = "word " * 50
    assert first_sentence(long, 20) == first_sentence(long, 20)
    assert len(first_sentence(long, 20)) == 20
    assert first_sentence([{"type": "text", "text": "Parts work. Really."}], 80) == "Parts work."


def test_bad_options_name_the_key(tmp_path):
    path = tmp_path / "lash.toml"
    path.write_text(TOML.format(keep_last=0))
    with pytest.raises(lash.ConfigError, match="compaction"):
        lash.open(path)
