"""``lash migrate --to CONFIG``: every session copied, verified by hash, resumable after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import lash
from lash.cli.migrate import PAUSE_ENV_VAR, copy_session

from .conftest import (
    HAS_SQLITE,
    assert_same_sessions,
    child_env,
    committed_ids,
    lash_command,
    record_sessions,
    sqlite_config,
)

Run = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.skipif(not HAS_SQLITE, reason="lash-sqlite is not installed")

SESSIONS = 8


def test_migrate_copies_every_session_and_a_rerun_skips_them(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    target = sqlite_config(tmp_path / "target.toml", "moved")
    first = lash_cli("migrate", "--to", str(target), "--json", cwd=demo_dir)
    report = json.loads(first.stdout)
    assert report["sessions"] == {"demo": "copied", "demo.researcher": "copied"}, first.stderr
    assert report["verified_sessions"] == 2 and report["verified_blobs"] >= 4

    again = lash_cli("migrate", "--to", str(target), cwd=demo_dir)
    assert again.returncode == 0, again.stderr
    assert "0 copied, 2 skipped (already in the target)" in again.stdout
    assert "verified 2 sessions" in again.stdout
    assert_same_sessions(demo_dir / "lash.toml", target)
    with lash.open(target) as moved:
        assert {i.parent_session_id for i in moved.sessions()} == {None, "demo"}


def test_migrate_killed_half_way_finishes_when_run_again(tmp_path: Path, lash_cli: Run) -> None:
    source = sqlite_config(tmp_path / "lash.toml", "sessions")
    target = sqlite_config(tmp_path / "target.toml", "moved")
    record_sessions(source, SESSIONS)

    # a test aid slows the copy down between sessions so that SIGKILL lands half way
    log = tmp_path / "killed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*lash_command(), "migrate", "--to", str(target)],
            cwd=tmp_path,
            env=child_env({PAUSE_ENV_VAR: "0.25"}),
            stdout=output,
            stderr=output,
        )
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "moved").glob("*.db"))) < 3:
        assert process.poll() is None, f"migrate ended before it could be killed: {log.read_text()}"
        assert time.monotonic() < deadline, "migrate copied nothing within 60 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL

    done_before = committed_ids(target)
    assert 2 <= len(done_before) < SESSIONS

    resumed = lash_cli("migrate", "--to", str(target))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{SESSIONS - len(done_before)} copied, {len(done_before)} skipped (already in the target)" in (
        resumed.stdout
    )
    # manifest, tool state and execution state of every session
    assert f"verified {SESSIONS} sessions and {SESSIONS * 3} blobs in the target by sha256" in resumed.stdout
    assert_same_sessions(source, target)


def test_a_target_session_created_but_never_committed_is_completed(tmp_path: Path) -> None:
    source_config = sqlite_config(tmp_path / "lash.toml", "sessions")
    target_config = sqlite_config(tmp_path / "target.toml", "moved")
    record_sessions(source_config, 1)
    with lash.open(source_config) as source, lash.open(target_config) as target:
        target.backend.open_session("agent-00", create=True).close()  # what a kill before the commit leaves
        status, digest = copy_session(source, target, "agent-00")
        assert status == "copied" and digest is not None
    assert_same_sessions(source_config, target_config)


def test_a_target_session_that_differs_is_refused_and_kept(tmp_path: Path, lash_cli: Run) -> None:
    source = sqlite_config(tmp_path / "lash.toml", "sessions")
    target = sqlite_config(tmp_path / "target.toml", "moved")
    record_sessions(source, 2)
    with lash.open(target) as handle:
        session = handle.session("agent-01")
        session.append_message("user", "someone else's work")
        session.commit()
        session.close()
    done = lash_cli("migrate", "--to", str(target))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "lash: error: session 'agent-01' already exists in the target and differs; not overwritten"
    )
    with lash.open(target) as handle:
        assert handle.session("agent-01").messages() == [{"role": "user", "content": "someone else's work"}]


def test_migrate_refuses_to_copy_a_config_onto_itself(tmp_path: Path, lash_cli: Run) -> None:
    source = sqlite_config(tmp_path / "lash.toml", "sessions")
    done = lash_cli("migrate", "--to", str(source))
    assert done.returncode == 1 and "names the configuration being migrated from" in done.stderr
