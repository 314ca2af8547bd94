"""lash on PostgreSQL under the DESIGN §7 workload: commit latency by turn, and resume latency.

Runs the reference turns through ``Session.commit`` on the ``postgres`` backend (a throwaway
server started from the installed PostgreSQL binaries, or ``--dsn``), and on lash-sqlite in
the same run for scale, then prints one table::

    python -m benchmarks.postgres_workload [--turns 1000] [--repeat 3] [--dsn postgresql://...]

Commit latency "at turn N" is the median over the 21 turns around N. A flat row shows that a
commit costs the same at turn 1000 as at turn 10. Resume is a new handle opening the session
and loading its active path. The throwaway server runs with ``fsync=off`` and sqlite with
``synchronous=normal``, so the numbers compare round trips and CPU time, not disks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.report import table, window
from benchmarks.systems import LashSystem, System
from benchmarks.workload import turns

MARKS = (10, 100, 1000)


def measure(build: Callable[[], System], turn_count: int) -> tuple[list[float], float]:
    """Commit latencies of every turn (seconds) and the resume latency of the result."""
    system = build()
    latencies = [system.turn(turn) for turn in turns(turn_count)]
    system.close()
    start = time.perf_counter()
    system.resume()
    return latencies, time.perf_counter() - start


def postgres_system(dsn: str) -> Callable[[], System]:
    def build() -> System:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        return LashSystem({"backend": "postgres", "options": {"dsn": dsn, "schema": schema}})

    return build


def sqlite_system(directory: Path) -> Callable[[], System]:
    def build() -> System:
        path = directory / uuid.uuid4().hex[:12]
        return LashSystem({"backend": "sqlite", "options": {"path": str(path)}})

    return build


def run(dsn: str, directory: Path, turn_count: int, repeat: int) -> str:
    marks = [m for m in MARKS if m <= turn_count]
    systems = {"lash + postgres": postgres_system(dsn), "lash + sqlite": sqlite_system(directory)}
    rows = []
    for name, build in systems.items():
        runs = [measure(build, turn_count) for _ in range(repeat)]
        commits = [statistics.median(statistics.median(window(r[0], m)) for r in runs) for m in marks]
        resume = statistics.median(r[1] for r in runs)
        rows.append([name, *(f"{c * 1000:.2f}" for c in commits), f"{resume * 1000:.1f}"])
    header = ["system", *(f"commit ms @ turn {m}" for m in marks), "resume ms"]
    return table(header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="an existing server (default: start a throwaway one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lash-bench-") as tmp:
        if args.dsn:
            print(run(args.dsn, Path(tmp), args.turns, args.repeat))
            return
        from lash_postgres.testing import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries (apt-get install postgresql), and no --dsn given")
        server = PostgresServer(bindir)
        try:
            print(run(server.dsn(), Path(tmp), args.turns, args.repeat))
        finally:
            server.close()


if __name__ == "__main__":
    main()
