"""Turn measurements into the tables, ``RESULTS.md`` and the latency plot.

Every figure is the median over repetitions (the minimum is given beside it), and every
figure is also shown as a ratio to the floor measured in the same run, because absolute
times on a shared machine say little.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.measure import Measurement
from benchmarks.systems import NOTES

WINDOW = 21
"""Commit latency "at turn N" is taken over the 21 turns centred on N (clipped to the run)."""

MS = 1000.0
MB = 1e6


def window(latencies: Sequence[float], turn: int) -> list[float]:
    half = WINDOW // 2
    lo = max(1, min(turn - half, len(latencies) - WINDOW + 1))
    return list(latencies[lo - 1 : lo - 1 + WINDOW])


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class Figures:
    """One system's repetitions, summarised figure by figure."""

    def __init__(self, runs: Sequence[Measurement]) -> None:
        self.name = runs[0].system
        self.runs = list(runs)

    def _over_runs(self, figure: Callable[[Measurement], float]) -> tuple[float, float]:
        values = [figure(run) for run in self.runs]
        return statistics.median(values), min(values)

    def commit(self, turn: int) -> tuple[float, float]:
        return self._over_runs(lambda r: statistics.median(window(r.latencies, turn)))

    def commit_p95(self, turn: int) -> tuple[float, float]:
        return self._over_runs(lambda r: p95(window(r.latencies, turn)))

    def resume(self) -> tuple[float, float]:
        return self._over_runs(lambda r: r.resume)

    def disk(self) -> float:
        return self._over_runs(lambda r: r.disk_bytes)[0]

    def rss(self) -> float:
        return self._over_runs(lambda r: r.peak_rss)[0]


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table that also reads well in a terminal."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = [_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0] * MS:.3f} ({pair[1] * MS:.3f})"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor else "n/a"


def tables(systems: Sequence[Figures], marks: Sequence[int], payload_bytes: int) -> str:
    """The absolute table and the ratio-to-floor table."""
    floor = systems[0]
    last = marks[-1]
    header = [
        "system",
        *(f"commit @{n} ms" for n in marks),
        f"p95 @{last} ms",
        f"@{last}/@{marks[0]}",
        "resume ms",
        "disk MB",
        "disk / payload",
        "peak RSS MB",
    ]
    rows = []
    for s in systems:
        growth = s.commit(last)[0] / s.commit(marks[0])[0]
        rows.append(
            [
                s.name,
                *(_ms(s.commit(n)) for n in marks),
                _ms(s.commit_p95(last)),
                f"{growth:.2f}x",
                _ms(s.resume()),
                f"{s.disk() / MB:.2f}",
                f"{s.disk() / payload_bytes:.2f}x",
                f"{s.rss() / MB:.0f}",
            ]
        )
    ratio_header = ["system / floor", *(f"commit @{n}" for n in marks), f"p95 @{last}", "resume", "disk", "peak RSS"]
    ratio_rows = [
        [
            s.name,
            *(_ratio(s.commit(n)[0], floor.commit(n)[0]) for n in marks),
            _ratio(s.commit_p95(last)[0], floor.commit_p95(last)[0]),
            _ratio(s.resume()[0], floor.resume()[0]),
            _ratio(s.disk(), floor.disk()),
            _ratio(s.rss(), floor.rss()),
        ]
        for s in systems[1:]
    ]
    return (
        "Medians over repetitions, the minimum in parentheses.\n\n"
        + table(header, rows)
        + f"\n\nRatios to the floor ({floor.name}) measured in the same run:\n\n"
        + table(ratio_header, ratio_rows)
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def results_markdown(
    systems: Sequence[Figures], marks: Sequence[int], payload_bytes: int, command: str, plot: str | None
) -> str:
    notes = "\n".join(f"- **{s.name}**: {NOTES.get(s.name, '')}" for s in systems)
    parts = [
        "# Benchmark results",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Workload: DESIGN §7, {marks[-1]} turns, {payload_bytes / MB:.1f} MB of raw payload handed to each store.",
        "",
        tables(systems, marks, payload_bytes),
        "",
    ]
    if plot:
        parts += [f"![commit latency by turn]({plot})", ""]
    parts += [
        "## What each system stores",
        "",
        "Every SQLite store runs in WAL mode with `synchronous=NORMAL`; each system runs in its own",
        "process after 5 warm-up turns, and repetitions alternate between systems.",
        "",
        notes,
        "",
    ]
    return "\n".join(parts)


def plot_latencies(systems: Sequence[Figures], path: Path) -> None:
    """Commit latency (rolling median of 21 turns, first repetition) against turn number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for s in systems:
        latencies = s.runs[0].latencies
        xs = range(1, len(latencies) + 1)
        ax.plot(xs, [statistics.median(window(latencies, t)) * MS for t in xs], label=s.name)
    ax.set_xlabel("turn")
    ax.set_ylabel("commit latency, ms (rolling median of 21 turns)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
