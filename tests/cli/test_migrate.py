"""``lash migrate --to CONFIG``: every session copied, verified, and a rerun copies nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import lash
from lash.cli.equality import of_read

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_migrate_copies_every_session_and_a_rerun_only_verifies(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    target = tmp_path / "target.toml"
    target.write_text('[store]\nbackend = "sqlite"\noptions = { path = "moved" }\n', encoding="utf-8")
    first = lash_cli("migrate", "--to", str(target), "--json", cwd=demo_dir)
    assert json.loads(first.stdout)["sessions"] == {"demo": "copied", "demo.researcher": "copied"}, first.stderr
    again = lash_cli("migrate", "--to", str(target), "--json", cwd=demo_dir)
    assert json.loads(again.stdout)["sessions"] == {"demo": "present", "demo.researcher": "present"}

    with lash.open(demo_dir / "lash.toml") as source, lash.open(target) as moved:
        for info in source.sessions():
            with (
                closing(source.backend.open_session(info.session_id, create=False)) as original,
                closing(moved.backend.open_session(info.session_id, create=False)) as copy,
            ):
                assert of_read(copy.load_session()) == of_read(original.load_session())
        assert {i.parent_session_id for i in moved.sessions()} == {None, "demo"}
