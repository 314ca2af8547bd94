"""``lash demo``: the README's main-job command records, resumes and proves equality."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_demo_resumes_an_equal_session_and_reports_it(demo_dir: Path, lash_cli: Run) -> None:
    # demo_dir ran `lash demo --turns 8 --dir ...` and asserted exit code 0
    assert (demo_dir / "lash.toml").is_file()
    done = lash_cli("demo", "--turns", "4", "--json", module=True)  # `python -m lash` works too
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["equal"] is True and report["differences"] == []
    assert report["turns"] == 4
    assert report["revision"] == report["commits"]
    assert report["bytes_on_disk"] > 0
    assert {(e["source"], e["model"]) for e in report["usage"]} >= {
        ("agent", "claude-sonnet-4-5"),
        ("agent", "claude-haiku-4-5"),
        ("subagent:researcher", "claude-haiku-4-5"),
    }


def test_demo_report_counts_reused_snapshot_blobs(demo_dir: Path, lash_cli: Run) -> None:
    done = lash_cli("demo", "--json")  # the default: 20 turns in a temporary directory
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["equal"]
    assert report["turns"] == 20 and report["frames"] == 2 and report["compacted"]
    # the tool registry changes every 4 turns: 5 tool-state blobs written, 15 commits reuse them
    assert report["blobs"]["stored"]["tool_state"] == 5
    assert report["blobs"]["reused"]["tool_state"] == 15


def test_demo_refuses_a_directory_that_already_holds_one(demo_dir: Path, lash_cli: Run) -> None:
    done = lash_cli("demo", "--dir", str(demo_dir))
    assert done.returncode == 1
    assert "already holds a demo" in done.stderr
