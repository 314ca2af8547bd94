"""Measure one system in this process and print its figures as JSON.

    python -m benchmarks.measure lash-sqlite --turns 1000 --dir /some/empty/dir

The runner starts one such process per system and repetition, so that peak RSS belongs
to one system and no system inherits another's warm caches.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.systems import SYSTEMS, System
from benchmarks.workload import turns

WARMUP_TURNS = 5
RESUME_REPEATS = 5


@dataclass(frozen=True)
class Measurement:
    """What one run of one system produced."""

    system: str
    latencies: list[float]
    """Seconds per commit/put, turn 1 first."""
    resume: float
    """Median seconds to reopen and load the active path, over :data:`RESUME_REPEATS`."""
    disk_bytes: int
    peak_rss: int
    """Bytes, the whole process."""


def disk_usage(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def measure(name: str, turn_count: int, directory: Path) -> Measurement:
    build = SYSTEMS[name]
    warm_dir = directory / "warmup"
    warm_dir.mkdir(parents=True)
    warm = build(warm_dir)  # imports, connections and caches, excluded from the figures
    for turn in turns(WARMUP_TURNS, seed=1):
        warm.turn(turn)
    warm.close()
    shutil.rmtree(warm_dir)

    system: System = build(directory)
    latencies = [system.turn(turn) for turn in turns(turn_count)]
    system.close()
    disk = system.disk_bytes() if hasattr(system, "disk_bytes") else disk_usage(directory)  # a server's, else files
    resumes = []
    for _ in range(RESUME_REPEATS):
        start = time.perf_counter()
        system.resume()
        resumes.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return Measurement(name, latencies, statistics.median(resumes), disk, peak)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--turns", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="an empty directory the system may fill")
    args = parser.parse_args(argv)
    print(json.dumps(asdict(measure(args.system, args.turns, args.dir))))


if __name__ == "__main__":
    main()
