"""The README's example is examples/quickstart.py, and it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lash

HERE = Path(__file__).parent.parent
QUICKSTART = HERE / "examples" / "quickstart.py"


def test_readme_example_is_the_quickstart_file() -> None:
    assert QUICKSTART.read_text().strip() in (HERE / "README.md").read_text()


def test_quickstart_pauses_resumes_and_forks_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LASH_CONFIG"}
    run = subprocess.run(
        [sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "['refund drafted', 'reviewer said yes']",
        "['refund drafted', 'reviewer said no']",
    ]
    with lash.open({"store": {"backend": "sqlite", "options": {"path": str(tmp_path / ".lash" / "sessions")}}}) as h:
        assert [info.session_id for info in h.sessions()] == ["langgraph:order-42"]
        assert h.session("langgraph:order-42").graph.orphaned_node_ids(), "the fork is a branch"
