"""The README's example is examples/quickstart.py, and it runs (offline, in a fresh directory)."""

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


def test_quickstart_runs_branches_and_records_usage_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LASH_CONFIG"}
    run = subprocess.run(
        [sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "It should arrive tomorrow.",
        "Order 42 is cancelled.",
        "['main', 'cancel']",
        "{'requests': 2, 'input_tokens': 100, 'output_tokens': 20, 'total_tokens': 120, 'total_turns': 1}",
    ]
    with lash.open({"store": {"backend": "sqlite", "options": {"path": str(tmp_path / ".lash" / "sessions")}}}) as h:
        session = h.session("support-42")
        assert [m["content"] for m in session.messages() if m["role"] == "user"] == [
            "Where is order 42?",
            "Cancel it instead.",
        ]
        assert session.usage_report().total.total == 120
