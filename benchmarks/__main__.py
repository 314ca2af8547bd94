"""lash against its peers and the raw floor on the DESIGN §7 workload, in one run.

    python -m benchmarks run                      # turns 10,100,1000, 3 repetitions
    python -m benchmarks run --quick              # under a minute: turns 10,50, 1 repetition
    python -m benchmarks run --systems floor lash-sqlite langgraph-sqlite
    python -m benchmarks run --systems lash-postgres langgraph-postgres --postgres-dsn postgresql://...

Each system runs in its own process (``benchmarks.measure``), repetitions alternating
between systems so that machine noise hits all alike. Prints the tables; a full run writes
``RESULTS.md`` and a latency plot next to it (a ``--quick`` or ``--systems`` trial writes
only where ``--output`` says). The ``postgres`` systems are opt-in: chosen with
``--systems``, they run on ``--postgres-dsn`` / ``$LASH_BENCH_POSTGRES_DSN`` (naming a server
also adds them to the default list), else on a throwaway server started from the installed
PostgreSQL binaries (see :mod:`benchmarks.postgres_server`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from benchmarks.measure import Measurement
from benchmarks.postgres_server import DSN_ENV, RUN_DSN_ENV, fresh_database, server
from benchmarks.report import Figures, plot_latencies, results_markdown, tables
from benchmarks.systems import POSTGRES_SYSTEMS, SYSTEMS
from benchmarks.workload import turns

HERE = Path(__file__).parent


def marks_arg(text: str) -> list[int]:
    try:
        marks = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected turn numbers like 10,100,1000, not {text!r}") from None
    if not marks or marks[0] < 1:
        raise argparse.ArgumentTypeError("turn numbers must be positive")
    return marks


def default_systems(postgres_dsn: str | None) -> list[str]:
    """Every system; the ``postgres`` ones only when a server is named (else they are opt-in).

    They would otherwise start a server on every run, ``--quick`` and its test included.
    """
    named = bool(postgres_dsn or os.environ.get(DSN_ENV))
    return [s for s in SYSTEMS if named or s not in POSTGRES_SYSTEMS]


def run_once(system: str, turn_count: int, postgres_dsn: str | None) -> Measurement:
    """One measuring process in a fresh directory (and, for a ``postgres`` system, a fresh database)."""
    with ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"lash-bench-{system}-"))
        env = dict(os.environ)
        if system in POSTGRES_SYSTEMS:
            assert postgres_dsn is not None
            env[RUN_DSN_ENV] = stack.enter_context(fresh_database(postgres_dsn))
        command = [sys.executable, "-m", "benchmarks.measure", system, "--turns", str(turn_count), "--dir", directory]
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"benchmark of {system} failed:\n{done.stderr}")
        return Measurement(**json.loads(done.stdout))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the comparison and write RESULTS.md")
    run.add_argument("--turns", type=marks_arg, default=None, help="turns to report at (default 10,100,1000)")
    run.add_argument("--repeat", type=int, default=None, help="repetitions per system (default 3)")
    run.add_argument("--quick", action="store_true", help="turns 10,50 and one repetition (under a minute)")
    run.add_argument("--systems", nargs="+", choices=list(SYSTEMS), help="default: all but the postgres ones")
    run.add_argument("--postgres-dsn", help=f"server for the postgres systems (else ${DSN_ENV}, else a throwaway one)")
    run.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the results (default: benchmarks/RESULTS.md for a full run of every default "
        "system; nothing for --quick or a --systems subset, so a trial run never replaces the published one)",
    )
    run.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    args = parser.parse_args(argv)

    marks = args.turns or ([10, 50] if args.quick else [10, 100, 1000])
    repeat = args.repeat or (1 if args.quick else 3)
    selected = args.systems or default_systems(args.postgres_dsn)
    systems = ["floor", *(s for s in selected if s != "floor")]
    results: dict[str, list[Measurement]] = {s: [] for s in systems}
    with ExitStack() as stack:
        postgres_dsn = stack.enter_context(server(args.postgres_dsn)) if POSTGRES_SYSTEMS & set(systems) else None
        for rep in range(repeat):
            for system in systems:
                print(f"[{rep + 1}/{repeat}] {system} ({marks[-1]} turns)", file=sys.stderr, flush=True)
                results[system].append(run_once(system, marks[-1], postgres_dsn))

    figures = [Figures(results[s]) for s in systems]
    payload = sum(t.payload_bytes for t in turns(marks[-1]))
    print(tables(figures, marks, payload))
    if args.output is None and (args.quick or args.systems):
        print("\nnot written (a trial run): pass --output FILE to keep it", file=sys.stderr)
        return
    args.output = args.output or HERE / "RESULTS.md"
    plot = None
    if not args.no_plot:
        plot_path = args.output.with_name(args.output.stem + "-latency.png")
        plot_latencies(figures, plot_path)
        plot = plot_path.name
    given = argv if argv is not None else sys.argv[1:]
    shown = [a.replace(args.postgres_dsn, "$" + DSN_ENV) if args.postgres_dsn else a for a in given]
    command = "python -m benchmarks " + shlex.join(shown)  # never the DSN: it may hold a password
    args.output.write_text(results_markdown(figures, marks, payload, command, plot))
    print(f"\nwrote {args.output}" + (f" and {plot}" if plot else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
