"""Many agents in one event loop: lash.aio against the sync API with a thread per session.

    python -m benchmarks.aio_concurrency                      # 100 sessions x 20 turns, SQLite and Postgres
    python -m benchmarks.aio_concurrency --backends sqlite --sessions 20 --turns 5 --max-workers 4 8
    python -m benchmarks.aio_concurrency --backends postgres --postgres-dsn postgresql://...

Every session commits the DESIGN §7 workload (``benchmarks.workload``): two messages, usage
and ~8 KB of execution state per turn, a new ~64 KB tool catalogue and ~16 KB plugin
snapshot every 10th turn. ``lash.aio`` runs all sessions as tasks of one event loop (for
each ``--max-workers``); the baseline runs the same sessions through ``lash.open`` with one
thread per session. Reported: throughput (commits/s), p50/p99 commit latency, and for the
event loop a 1 ms ticker's worst lateness and the longest single callback (the target: no
callback blocks the loop for more than 5 ms), in wall time and in the loop thread's own CPU
time: wall time also counts waiting for the GIL and for a core, CPU time only the work done.
The longest garbage-collector pass (``gc.callbacks``; wall and CPU time) and the number of
full passes are reported beside them, since a collection runs inside whichever callback
allocated last, and a full one walks every tracked object of the process: its cost grows
with everything alive, not with what the callback did. ``--gc-freeze`` moves what exists
before the run (modules, the generated workload) out of the collector's reach with
``gc.freeze()``, as a latency-sensitive application would after start-up; lash never calls it.

On SQLite, ``lash.aio`` runs the sync store in its worker pool (``--max-workers``). On
Postgres it is native (psycopg's ``AsyncConnectionPool``; the pool size is ``--pool-max``
for both modes), and the table reports how many calls it handed to worker threads anyway
(expected: 0). Postgres is the server of ``--postgres-dsn`` / ``$LASH_BENCH_POSTGRES_DSN``,
or a throwaway one (``benchmarks.postgres_server``; ``--durable`` keeps fsync on), with a
fresh database per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lash
import lash.aio
from benchmarks.workload import Turn, turns
from lash.session import SessionBase

TICK = 0.001
SLOW_CALLBACK = 0.005


class Snapshots:
    """The workload's plugin: each session's snapshot changes when its turn says so."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    @lash.hookimpl
    def lash_snapshot_session(self, session: SessionBase) -> Any:
        return self.state.get(session.session_id)


def record(session: SessionBase, turn: Turn, plugin: Snapshots) -> None:
    """Everything a turn hands to lash before its commit."""
    session.append_message("user", turn.user)
    session.append_message("assistant", turn.assistant)
    session.record_usage("agent", "model", lash.TokenUsage(input_tokens=turn.usage[0], output_tokens=turn.usage[1]))
    session.set_execution_state(turn.execution_state)
    if turn.tools is not None:
        session.tools.replace(turn.tools)
        plugin.state[session.session_id] = turn.plugin_state


@dataclass
class Result:
    """One mode's measurements."""

    mode: str
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    tick_lateness: list[float] = field(default_factory=list)
    callbacks: list[float] = field(default_factory=list)
    callback_cpu: list[float] = field(default_factory=list)
    slowest: list[tuple[float, str]] = field(default_factory=list)
    gc_passes: list[float] = field(default_factory=list)
    gc_cpu: list[float] = field(default_factory=list)
    """CPU time of each collector pass, in the thread that ran it (the loop's or a worker's)."""
    full_gc_passes: int = 0
    """Passes over the oldest generation: they walk every tracked object of the process."""
    worker_calls: int | None = None
    """Calls handed to lash.aio's worker pool while sessions committed (None: not counted)."""


@contextlib.contextmanager
def gc_timer(result: Result) -> Iterator[None]:
    """Record the wall and CPU time of every garbage-collector pass in the block, and count the full ones."""
    started: list[tuple[float, float]] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append((time.perf_counter(), time.thread_time()))
        elif started:
            wall, cpu = started.pop()
            result.gc_passes.append(time.perf_counter() - wall)
            result.gc_cpu.append(time.thread_time() - cpu)
            result.full_gc_passes += info["generation"] == 2

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


def counting_worker_calls(handle: lash.aio.Lash) -> list[object]:
    """Every function handed to the handle's worker pool from now on (wraps its ``submit``)."""
    submitted: list[object] = []
    submit = handle._executor.submit

    def counted(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        submitted.append(function)
        return submit(function, *args, **kwargs)

    handle._executor.submit = counted  # type: ignore[method-assign]
    return submitted


class CallbackTimer:
    """Times every callback the event loop runs (wraps ``asyncio.Handle._run`` while active)."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self._original: Callable[..., Any] | None = None

    def __enter__(self) -> CallbackTimer:
        original = self._original = asyncio.Handle._run
        result = self.result

        def timed(handle: asyncio.Handle) -> None:
            start, cpu = time.perf_counter(), time.thread_time()
            original(handle)
            spent = time.perf_counter() - start
            result.callbacks.append(spent)
            result.callback_cpu.append(time.thread_time() - cpu)
            if spent > SLOW_CALLBACK:
                result.slowest.append((spent, repr(handle)[:160]))

        asyncio.Handle._run = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.Handle._run = self._original  # type: ignore[method-assign]


async def ticker(result: Result, stop: asyncio.Event) -> None:
    """Sleep 1 ms at a time and record how late each wake-up is."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(TICK)
        result.tick_lateness.append(time.perf_counter() - start - TICK)


async def run_async(
    config: dict[str, Any], label: str, sessions: int, workload: Sequence[Turn], workers: int
) -> Result:
    result = Result(label)
    plugin = Snapshots()
    async with lash.aio.open(config, plugins=[plugin], max_workers=workers) as handle:
        opened = await asyncio.gather(*(handle.session(f"agent-{i}") for i in range(sessions)))

        async def agent(session: lash.aio.Session) -> None:
            for turn in workload:
                record(session, turn, plugin)
                start = time.perf_counter()
                await session.commit()
                result.latencies.append(time.perf_counter() - start)

        stop = asyncio.Event()
        submitted = counting_worker_calls(handle)
        with CallbackTimer(result), gc_timer(result):
            tick = asyncio.create_task(ticker(result, stop))
            start = time.perf_counter()
            await asyncio.gather(*(agent(session) for session in opened))
            result.wall = time.perf_counter() - start
            stop.set()
            await tick
        result.worker_calls = len(submitted)
    return result


def run_threads(config: dict[str, Any], sessions: int, workload: Sequence[Turn]) -> Result:
    result = Result("sync lash, thread per session")
    plugin = Snapshots()
    with lash.open(config, plugins=[plugin]) as handle:
        opened = [handle.session(f"agent-{i}") for i in range(sessions)]
        ready = threading.Barrier(sessions + 1)
        lock = threading.Lock()

        def agent(session: lash.Session) -> None:
            mine = []
            ready.wait()
            for turn in workload:
                record(session, turn, plugin)
                start = time.perf_counter()
                session.commit()
                mine.append(time.perf_counter() - start)
            with lock:
                result.latencies.extend(mine)

        threads = [threading.Thread(target=agent, args=(session,)) for session in opened]
        for thread in threads:
            thread.start()
        ready.wait()
        start = time.perf_counter()
        with gc_timer(result):
            for thread in threads:
                thread.join()
        result.wall = time.perf_counter() - start
    return result


def sqlite_results(args: argparse.Namespace, workload: Sequence[Turn]) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="lash-aio-bench-") as tmp:
        root = Path(tmp)

        def config(name: str) -> dict[str, Any]:
            return {"store": {"backend": "sqlite", "options": {"path": str(root / name)}}}

        for workers in args.max_workers:
            label = f"lash.aio, one loop, {workers} workers"
            results.append(asyncio.run(run_async(config(f"aio-{workers}"), label, args.sessions, workload, workers)))
        results.append(run_threads(config("threads"), args.sessions, workload))
    return results


def postgres_results(args: argparse.Namespace, workload: Sequence[Turn]) -> list[Result]:
    from benchmarks.postgres_server import fresh_database, server

    def config(dsn: str) -> dict[str, Any]:
        return {"store": {"backend": "postgres", "options": {"dsn": dsn, "pool_max": args.pool_max}}}

    with server(args.postgres_dsn, durable=args.durable) as dsn:
        with fresh_database(dsn) as database:
            label = f"lash.aio, one loop, native, pool {args.pool_max}"
            native = asyncio.run(run_async(config(database), label, args.sessions, workload, min(args.max_workers)))
        with fresh_database(dsn) as database:
            threads = run_threads(config(database), args.sessions, workload)
            threads.mode = f"sync lash, thread per session, pool {args.pool_max}"
    return [native, threads]


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def table(results: Sequence[Result]) -> str:
    header = (
        f"{'mode':<40} {'commits':>7} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'tick late max ms':>16} {'tick late p99 ms':>16} {'longest callback ms':>19} {'callbacks > 5 ms':>16} "
        f"{'its CPU ms':>10} {'callbacks > 5 ms CPU':>20} {'longest GC ms':>13} {'its CPU ms':>10} {'full GCs':>8} "
        f"{'worker calls':>12}"
    )
    lines = [header, "─" * len(header)]
    for r in results:
        loop = (
            f"{max(r.tick_lateness) * 1e3:>16.2f} {percentile(r.tick_lateness, 99) * 1e3:>16.2f} "
            f"{max(r.callbacks) * 1e3:>19.2f} {sum(c > SLOW_CALLBACK for c in r.callbacks):>16} "
            f"{max(r.callback_cpu) * 1e3:>10.2f} {sum(c > SLOW_CALLBACK for c in r.callback_cpu):>20}"
            if r.callbacks
            else f"{'-':>16} {'-':>16} {'-':>19} {'-':>16} {'-':>10} {'-':>20}"
        )
        longest_gc = (
            f"{max(r.gc_passes) * 1e3:>13.2f} {r.gc_cpu[r.gc_passes.index(max(r.gc_passes))] * 1e3:>10.2f}"
            if r.gc_passes
            else f"{'-':>13} {'-':>10}"
        )
        longest_gc += f" {r.full_gc_passes:>8}"
        workers = f"{r.worker_calls:>12}" if r.worker_calls is not None else f"{'-':>12}"
        lines.append(
            f"{r.mode:<40} {len(r.latencies):>7} {len(r.latencies) / r.wall:>10.1f} "
            f"{percentile(r.latencies, 50) * 1e3:>8.2f} {percentile(r.latencies, 99) * 1e3:>8.2f} {loop} "
            f"{longest_gc} {workers}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--max-workers", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--pool-max", type=int, default=20, help="Postgres connections per pool (both modes)")
    parser.add_argument("--postgres-dsn", help="an existing server (its role needs CREATEDB); default: a throwaway")
    parser.add_argument("--durable", action="store_true", help="throwaway server with fsync on (default: off)")
    parser.add_argument("--show-slow", action="store_true", help="list the callbacks that took longer than 5 ms")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() what exists before the run")
    args = parser.parse_args(argv)
    workload = list(turns(args.turns))
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    for backend in args.backends:
        results = sqlite_results(args, workload) if backend == "sqlite" else postgres_results(args, workload)
        print(f"\n{args.sessions} sessions x {args.turns} turns of the DESIGN §7 workload on lash-{backend}\n")
        print(table(results))
        if args.show_slow:
            for r in results:
                for spent, what in sorted(r.slowest, reverse=True)[:10]:
                    print(f"{r.mode}: {spent * 1e3:.1f} ms {what}")


if __name__ == "__main__":
    main()
