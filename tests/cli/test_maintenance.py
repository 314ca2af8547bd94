"""``lash gc``, ``lash prune`` and ``lash delete`` on a copy of the demo's SQLite sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_gc_dry_run_counts_what_gc_then_deletes(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    work = shutil.copytree(demo_dir, tmp_path / "work")
    dry = json.loads(lash_cli("gc", "--dry-run", "--json", cwd=work).stdout)
    assert dry["dry_run"] and dry["deleted_blob_count"] > 0  # snapshots older than the heads' ones
    done = json.loads(lash_cli("gc", "--json", cwd=work).stdout)
    assert done["deleted_blob_count"] == dry["deleted_blob_count"]  # so the dry run deleted nothing
    resumed = lash_cli("show", "demo", "--frame", cwd=work)  # every blob a head needs is still there
    assert resumed.returncode == 0, resumed.stderr


def test_delete_asks_for_yes_and_then_removes_the_session(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    work = shutil.copytree(demo_dir, tmp_path / "work")
    refused = lash_cli("delete", "demo.researcher", cwd=work)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert lash_cli("delete", "demo.researcher", "--yes", cwd=work).returncode == 0
    ids = [i["session_id"] for i in json.loads(lash_cli("sessions", "--json", cwd=work).stdout)]
    assert ids == ["demo"]


def test_prune_reports_what_it_removed(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    work = shutil.copytree(demo_dir, tmp_path / "work")
    report = json.loads(lash_cli("prune", "demo", "--json", cwd=work).stdout)
    assert report["session_id"] == "demo" and report["removed_node_count"] == 0  # the demo never branches
