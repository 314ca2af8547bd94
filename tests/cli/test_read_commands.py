"""Read commands: human tables by default, one parseable JSON document with ``--json``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]


def read_json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sessions_lists_the_demo_and_its_sub_agent(demo_dir: Path, lash_cli: Run) -> None:
    infos = {i["session_id"]: i for i in read_json(lash_cli("sessions", "--json", cwd=demo_dir))}
    assert infos["demo.researcher"]["parent_session_id"] == "demo"
    assert infos["demo"]["first_user_message"].startswith("The checkout test fails")
    table = lash_cli("sessions", cwd=demo_dir).stdout
    assert "demo.researcher" in table and "The checkout test fails" in table


def test_show_prints_the_transcript_and_frame(demo_dir: Path, lash_cli: Run) -> None:
    transcript = lash_cli("show", "demo", cwd=demo_dir).stdout
    assert "The checkout test fails about one run in ten on CI" in transcript
    assert "new frame (compaction)" in transcript

    shown = read_json(lash_cli("show", "demo", "--frame", "--json", cwd=demo_dir))
    assert shown["frame"]["reason"] == "compaction"
    roles = [m["role"] for m in shown["messages"]]
    assert roles[0] == "system"  # keep-recent keeps the system prompt
    assert "The checkout test fails" not in json.dumps(shown["messages"])  # compacted away


def test_usage_rolls_up_children_only_when_asked(demo_dir: Path, lash_cli: Run) -> None:
    own = read_json(lash_cli("usage", "demo", "--json", cwd=demo_dir))
    rolled = read_json(lash_cli("usage", "demo", "--children", "--json", cwd=demo_dir))
    assert "subagent:researcher" not in {e["source"] for e in own["entries"]}
    assert "subagent:researcher" in {e["source"] for e in rolled["entries"]}
    child = next(e for e in rolled["entries"] if e["source"] == "subagent:researcher")
    assert rolled["total"]["input_tokens"] == own["total"]["input_tokens"] + child["usage"]["input_tokens"]


def test_plugins_lists_distributions_and_registrations(lash_cli: Run, memory_config: Path) -> None:
    plugins = {
        p["plugin"]: p for p in read_json(lash_cli("plugins", "--json", "--config", str(memory_config)))["plugins"]
    }
    assert plugins["memory"]["distribution"] == "lash-memory"
    assert plugins["memory"]["registers"]["backend"] == ["memory"]
    assert plugins["lash.compaction"]["registers"]["compactor"] == ["keep-recent"]


def test_config_shows_its_source_and_effective_values(lash_cli: Run, memory_config: Path) -> None:
    shown = read_json(lash_cli("config", "--json", "--config", str(memory_config)))
    assert shown["source"] == str(memory_config.resolve())
    assert shown["config"]["store"] == {"backend": "memory", "options": {}}
    assert shown["config"]["compaction"]["strategy"] == "keep-recent"
    human = lash_cli("config", "--config", str(memory_config)).stdout
    assert f"# from {memory_config.resolve()}" in human and 'backend = "memory"' in human


def test_sessions_of_an_empty_store_is_an_empty_json_list(lash_cli: Run, memory_config: Path) -> None:
    assert read_json(lash_cli("sessions", "--json", "--config", str(memory_config))) == []
