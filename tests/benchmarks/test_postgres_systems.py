"""The benchmark's opt-in PostgreSQL systems run end to end on a real server, so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_postgres_systems_compare_lash_with_postgres_saver_on_a_named_server(tmp_path: Path, postgres_dsn: str) -> None:
    output = tmp_path / "RESULTS.md"
    command = [sys.executable, "-m", "benchmarks", "run", "--turns", "5", "--repeat", "1", "--no-plot"]
    command += ["--systems", "lash-postgres", "langgraph-postgres", "--output", str(output)]
    env = {**os.environ, "LASH_BENCH_POSTGRES_DSN": postgres_dsn}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    results = output.read_text()
    for system in ("lash-postgres", "langgraph-postgres"):
        assert f"| {system} " in results, system
    assert postgres_dsn not in results
