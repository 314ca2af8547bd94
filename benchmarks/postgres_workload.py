"""lash on PostgreSQL under the DESIGN §7 workload: latency by turn, and throughput under concurrency.

    python -m benchmarks.postgres_workload [--turns 1000] [--repeat 3] [--concurrency 1,4,16]
        [--throughput-turns 60] [--only latency|throughput] [--fsync on|off] [--postgres-dsn ...]

*Latency*: the reference turns through ``Session.commit`` on the ``postgres`` backend, and on
lash-sqlite in the same run for scale. Commit latency "at turn N" is the median over the 21
turns around N: a flat row shows that a commit costs the same at turn 1000 as at turn 10.
Resume is a new handle opening the session and loading its active path.

*Throughput*: N threads, each committing the workload to a session of its own, through one
backend (one connection pool of N) for lash and one ``ConnectionPool`` of N for LangGraph's
``PostgresSaver``; commits per second over the whole run, and p50/p99 of every commit.

The server is the benchmark's (:mod:`benchmarks.postgres_server`): ``--postgres-dsn``, else
``$LASH_BENCH_POSTGRES_DSN``, else a throwaway one with ``fsync`` and ``synchronous_commit``
on (``--fsync off`` to take the disk out of the figures). Each system and concurrency gets a
fresh database. SQLite runs with ``synchronous=normal`` (no flush per commit), so it is there
for scale, not as a peer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lash
from benchmarks.__main__ import marks_arg
from benchmarks.postgres_server import RUN_DSN_ENV, fresh_database, fresh_schema, server
from benchmarks.report import table, window
from benchmarks.systems import THREAD, LangGraphPostgres, LashPostgres, LashSystem, System
from benchmarks.workload import turns

MARKS = (10, 100, 1000)


# -- latency by turn ----------------------------------------------------------------------


def measure(build: Callable[[], System], turn_count: int) -> tuple[list[float], float]:
    """Commit latencies of every turn (seconds) and the resume latency of the result."""
    system = build()
    latencies = [system.turn(turn) for turn in turns(turn_count)]
    system.close()
    start = time.perf_counter()
    system.resume()
    return latencies, time.perf_counter() - start


def sqlite_system(directory: Path) -> Callable[[], System]:
    def build() -> System:
        path = directory / uuid.uuid4().hex[:12]
        return LashSystem({"backend": "sqlite", "options": {"path": str(path)}})

    return build


def latency(dsn: str, directory: Path, turn_count: int, repeat: int) -> str:
    marks = [m for m in MARKS if m <= turn_count]
    systems: dict[str, Callable[[], System]] = {
        "lash + postgres": lambda: LashPostgres(directory),
        "lash + sqlite": sqlite_system(directory),
    }
    rows = []
    for name, build in systems.items():
        runs = []
        for _ in range(repeat):
            with fresh_database(dsn) as run_dsn:
                os.environ[RUN_DSN_ENV] = run_dsn
                runs.append(measure(build, turn_count))
        commits = [statistics.median(statistics.median(window(r[0], m)) for r in runs) for m in marks]
        resume = statistics.median(r[1] for r in runs)
        rows.append([name, *(f"{c * 1000:.2f}" for c in commits), f"{resume * 1000:.1f}"])
    header = ["system", *(f"commit ms @ turn {m}" for m in marks), "resume ms"]
    return table(header, rows)


# -- throughput under concurrency -----------------------------------------------------------


class SessionSnapshots:
    """The benchmark's snapshot plugin for many sessions on one handle: a state per session."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return self.states.get(session.session_id)

    def of(self, session_id: str) -> SessionState:
        return SessionState(self.states, session_id)


class SessionState:
    """``plugin.state`` as :meth:`LashSystem.turn` sets it, for one session of :class:`SessionSnapshots`."""

    def __init__(self, states: dict[str, Any], session_id: str) -> None:
        self._states = states
        self._session_id = session_id

    @property
    def state(self) -> Any:
        return self._states.get(self._session_id)

    @state.setter
    def state(self, value: Any) -> None:
        self._states[self._session_id] = value


class LashOnSharedHandle(LashSystem):
    """:class:`LashSystem`'s turns on one session of a handle that every thread shares."""

    def __init__(self, handle: lash.Lash, snapshots: SessionSnapshots, session_id: str) -> None:
        self.handle = handle
        self.plugin = snapshots.of(session_id)  # type: ignore[assignment]
        self.session = handle.session(session_id)


class LangGraphOnSharedPool(LangGraphPostgres):
    """:class:`LangGraphPostgres`'s checkpoints of one thread id, on a saver every thread shares."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self.saver = saver
        self.config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.values = {"messages": []}
        self.versions = {}


def _lash_fleet(dsn: str, sessions: int) -> tuple[list[System], Callable[[], None]]:
    snapshots = SessionSnapshots()
    store = {"backend": "postgres", "options": {"dsn": dsn, "schema": fresh_schema(), "pool_max": sessions}}
    handle = lash.open({"store": store}, plugins=[snapshots])
    systems: list[System] = [LashOnSharedHandle(handle, snapshots, f"{THREAD}-{i}") for i in range(sessions)]
    return systems, handle.close


def _langgraph_fleet(dsn: str, sessions: int) -> tuple[list[System], Callable[[], None]]:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    pool = ConnectionPool(dsn, min_size=sessions, max_size=sessions, kwargs=kwargs, open=True)
    saver = PostgresSaver(pool)  # type: ignore[arg-type]
    saver.setup()
    systems: list[System] = [LangGraphOnSharedPool(saver, f"{THREAD}-{i}") for i in range(sessions)]
    return systems, pool.close


FLEETS: dict[str, Callable[[str, int], tuple[list[System], Callable[[], None]]]] = {
    "lash-postgres": _lash_fleet,
    "langgraph-postgres": _langgraph_fleet,
}


def run_fleet(systems: Sequence[System], turn_count: int) -> tuple[float, list[float]]:
    """Every system commits ``turn_count`` turns in its own thread; wall seconds and every latency."""
    workload = list(turns(turn_count))
    latencies: list[list[float]] = [[] for _ in systems]
    errors: list[BaseException] = []
    start = threading.Barrier(len(systems) + 1)

    def work(index: int) -> None:
        start.wait()
        try:
            latencies[index] = [systems[index].turn(turn) for turn in workload]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(systems))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return wall, [seconds for per_thread in latencies for seconds in per_thread]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def throughput(dsn: str, concurrency: Sequence[int], turn_count: int) -> str:
    rows = []
    for sessions in concurrency:
        figures: dict[str, float] = {}
        for name, fleet in FLEETS.items():
            with fresh_database(dsn) as run_dsn:
                systems, close = fleet(run_dsn, sessions)
                try:
                    for system in systems:  # connections, prepared statements, first rows
                        for turn in turns(3, seed=1):
                            system.turn(turn)
                    wall, latencies = run_fleet(systems, turn_count)
                finally:
                    close()
            rate = len(latencies) / wall
            figures[name] = rate
            p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
            rows.append([name, str(sessions), f"{rate:.0f}", f"{p50:.2f}", f"{p99:.2f}"])
        rows[-2].append("")
        rows[-1].append(f"{figures['lash-postgres'] / figures['langgraph-postgres']:.2f}x")
    header = ["system", "sessions (threads)", "commits/s", "p50 ms", "p99 ms", "lash / langgraph commits/s"]
    return table(header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000, help="turns of the latency run")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the latency run")
    parser.add_argument("--concurrency", type=marks_arg, default=[1, 4, 16], help="sessions committing at once")
    parser.add_argument("--throughput-turns", type=int, default=60, help="turns each session commits")
    parser.add_argument("--only", choices=["latency", "throughput"])
    parser.add_argument("--postgres-dsn", help="an existing server (else $LASH_BENCH_POSTGRES_DSN, else a throwaway)")
    parser.add_argument("--fsync", choices=["on", "off"], default="on", help="of the throwaway server (default on)")
    args = parser.parse_args(argv)
    with (
        server(args.postgres_dsn, durable=args.fsync == "on") as dsn,
        tempfile.TemporaryDirectory(prefix="lash-bench-") as tmp,
    ):
        if args.only != "throughput":
            print(latency(dsn, Path(tmp), args.turns, args.repeat), flush=True)
        if args.only != "latency":
            print(throughput(dsn, args.concurrency, args.throughput_turns))


if __name__ == "__main__":
    main()
