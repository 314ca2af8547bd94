"""The benchmark's ``--quick`` mode runs end to end, so the benchmark cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_compares_every_system_with_the_floor(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = output.read_text()
    for system in ("lash-sqlite", "lash-memory", "langgraph-sqlite", "agents-sqlite"):
        assert f"| {system} " in results, system  # a row in the absolute table
        assert f"| {system} " in done.stdout
    assert "Ratios to the floor (floor)" in results
    assert (tmp_path / "RESULTS-latency.png").read_bytes().startswith(b"\x89PNG")
