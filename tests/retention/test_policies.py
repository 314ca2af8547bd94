"""``[retention]``: what each policy key removes, what it never touches, and the dry run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.cli import main as lash_cli
from lash.config import Duration, OrphanedBranches, RetentionSection
from lash.retention import apply_retention

HOUR = 3600
Record = Callable[..., lash.Session]


def ids(handle: lash.Lash) -> list[str]:
    return sorted(info.session_id for info in handle.sessions())


def test_without_a_retention_section_nothing_is_deleted(record: Record, config: dict[str, Any]) -> None:
    with lash.open(config) as handle:
        record(handle, "a", "hello").close()
        report = handle.apply_retention()
        assert report.sessions == () and report.gc is None
        assert ids(handle) == ["a"]


def test_max_sessions_keeps_the_most_recently_committed(record: Record, config: dict[str, Any]) -> None:
    with lash.open({**config, "retention": {"max_sessions": 2}}) as handle:
        for session_id in ("oldest", "middle", "newest"):
            record(handle, session_id, f"hello from {session_id}").close()
            time.sleep(0.01)
        record(handle, "oldest", "a new turn makes it the newest").close()  # reopened: resumes and commits
        report = handle.apply_retention()
        assert report.deleted_session_ids == ["middle"]
        assert ids(handle) == ["newest", "oldest"]
        assert report.gc is not None  # blob GC followed


def test_max_age_deletes_sessions_whose_last_commit_is_older(record: Record, config: dict[str, Any]) -> None:
    with lash.open(config) as handle:
        record(handle, "stale", "one", "two").close()
        time.sleep(0.01)
        fresh_commit = time.time()
        record(handle, "fresh", "hi").close()
        policy = RetentionSection(max_age=Duration.parse("1h"))
        report = apply_retention(handle.backend, policy, now=fresh_commit + HOUR)  # "stale" is just over an hour old
        assert report.deleted_session_ids == ["stale"]
        (detail,) = report.sessions
        assert (detail.reasons, detail.head_revision, detail.node_count) == (("max_age",), 2, 2)
        assert detail.node_bytes > 0 and report.bytes_freed == detail.node_bytes
        assert ids(handle) == ["fresh"]


def test_dry_run_reports_what_the_real_run_does_and_changes_nothing(record: Record, config: dict[str, Any]) -> None:
    with lash.open(config) as handle:
        record(handle, "old", "bye").close()
        session = record(handle, "branchy", "root", "kept")
        root = session.graph.active_path()[0].node_id
        leaf = session.graph.leaf_node_id
        session.checkout(root)
        session.append_message("user", "abandoned")
        session.commit()
        session.checkout(leaf)
        session.commit()
        session.close()
        policy = RetentionSection(max_sessions=1, orphaned_branches=OrphanedBranches.PRUNE)
        dry = apply_retention(handle.backend, policy, dry_run=True)
        assert ids(handle) == ["branchy", "old"]
        assert len(handle.session("branchy").graph) == 3  # the branch is still stored
        real = apply_retention(handle.backend, policy)
        assert [(s.session_id, s.action, s.node_count, s.node_bytes) for s in dry.sessions] == [
            (s.session_id, s.action, s.node_count, s.node_bytes) for s in real.sessions
        ]
        assert dry.gc is None and real.gc is not None
        assert ids(handle) == ["branchy"]


def test_orphaned_branches_prune_removes_only_nodes_off_the_active_path(record: Record, config: dict[str, Any]) -> None:
    with lash.open({**config, "retention": {"orphaned_branches": "prune"}}) as handle:
        session = record(handle, "s", "first", "second")
        first, second = (n.node_id for n in session.graph.active_path())
        session.checkout(first)
        dead = session.append_message("user", "a branch nobody follows")
        session.commit()
        session.checkout(second)
        session.commit()
        session.close()
        report = handle.apply_retention()
        assert (report.nodes_tombstoned, report.sessions_deleted) == (1, 0)
        resumed = handle.session("s")
        assert dead not in resumed.graph
        assert [m["content"] for m in resumed.messages()] == ["first", "second"]


def test_keep_frames_prunes_branches_of_older_frames_and_never_the_active_path(
    record: Record, config: dict[str, Any]
) -> None:
    with lash.open({**config, "retention": {"keep_frames": 2}}) as handle:
        session = record(handle, "s", "m1", "m2")
        m1, m2 = (n.node_id for n in session.graph.active_path())
        session.checkout(m1)
        old_branch = session.append_message("user", "branch in the first frame")
        session.commit()
        session.checkout(m2)
        session.commit()
        assert session.compact()
        session.append_message("user", "m3")
        session.commit()
        anchor = session.graph.leaf_node_id
        session.append_message("user", "m4")
        session.commit()
        leaf = session.graph.leaf_node_id
        session.checkout(anchor)
        recent_branch = session.append_message("user", "branch in the second frame")
        session.commit()
        session.checkout(leaf)
        session.commit()
        assert session.compact()
        path_before = [n.node_id for n in session.graph.active_path()]
        session.close()
        report = handle.apply_retention()
        assert report.nodes_tombstoned == 1
        resumed = handle.session("s")
        assert old_branch not in resumed.graph and recent_branch in resumed.graph
        assert [n.node_id for n in resumed.graph.active_path()] == path_before


def test_stale_compare_and_delete_conflicts_and_deletes_nothing(record: Record, config: dict[str, Any]) -> None:
    with lash.open(config) as handle:
        record(handle, "s", "one", "two").close()
        with pytest.raises(lash.HeadRevisionConflict) as caught:
            handle.backend.delete_session("s", expected_head_revision=1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert [m["content"] for m in handle.session("s").messages()] == ["one", "two"]
        assert handle.backend.delete_session("s", expected_head_revision=2)
        assert ids(handle) == []


def test_a_store_still_open_on_a_deleted_session_refuses_to_commit(record: Record, config: dict[str, Any]) -> None:
    with lash.open(config) as handle:
        writer = record(handle, "s", "one")
        assert handle.backend.delete_session("s")  # through its own store: a second connection for sqlite
        writer.append_message("user", "written into a deleted session?")
        with pytest.raises(lash.SessionDeletedError, match="'s' was deleted"):
            writer.commit()
        assert ids(handle) == []


def test_a_max_age_that_does_not_parse_names_the_file_the_key_and_the_format(tmp_path: Path) -> None:
    source = tmp_path / "lash.toml"
    source.write_text('[store]\nbackend = "memory"\n[retention]\nmax_age = "soon"\n', encoding="utf-8")
    with pytest.raises(lash.ConfigError) as caught:
        lash.open(source)
    message = str(caught.value)
    assert str(source) in message and "retention.max_age" in message and "'soon'" in message
    assert "30d" in message and "s, m, h, d or w" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("keep_frames", 0, "≥ 1"), ("max_sessions", "3", "expected int"), ("orphaned_branches", "drop", "'prune'")],
)
def test_other_bad_retention_values_name_their_key(tmp_path: Path, key: str, value: Any, expected: str) -> None:
    with pytest.raises(lash.ConfigError, match=f"retention.{key}.*{expected}"):
        lash.open({"store": {"backend": "memory"}, "retention": {key: value}})


def test_cli_dry_run_prints_json_and_the_real_run_a_table(
    record: Record, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = tmp_path / "sessions"
    source = tmp_path / "lash.toml"
    source.write_text(
        f'[store]\nbackend = "sqlite"\noptions = {{ path = "{sessions.as_posix()}" }}\n[retention]\nmax_sessions = 1\n',
        encoding="utf-8",
    )
    with lash.open(source) as handle:
        record(handle, "old", "hello").close()
        time.sleep(0.01)
        record(handle, "new", "hello").close()
    assert lash_cli(["retention", "--dry-run", "--json", "--config", str(source)]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["dry_run"], dry["sessions_deleted"], dry["sessions"][0]["session_id"]) == (True, 1, "old")
    assert lash_cli(["retention", "--config", str(source)]) == 0
    table = capsys.readouterr().out
    assert "old" in table and "max_sessions" in table and "deleted 1 sessions" in table
    with lash.open(source) as handle:
        assert ids(handle) == ["new"]
