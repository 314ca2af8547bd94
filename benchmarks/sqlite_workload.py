"""lash + lash-sqlite on the DESIGN §7 reference workload, against a raw sqlite3 floor.

    python -m benchmarks.sqlite_workload            # 5000 turns (10,000 nodes), < 2 minutes
    python -m benchmarks.sqlite_workload --turns 10000

For each blob profile it commits every turn through the public API (``lash.open``,
``Session.commit``, default ``[gc] auto_every_commits = 100``) and, in the same run, does the
same turns with plain sqlite3 (WAL, ``synchronous=NORMAL``, one transaction per turn):

* floor ``nodes``: the same node bytes lash stores (pre-encoded), nothing else;
* floor ``nodes+state``: those nodes, the execution state and changed snapshots as raw
  rows, and a head row: the least any store of the same data must write.

Reported: median commit latency over the 21 turns around 10/100/1000/… and its ratio to both
floors; resume latency (open the session + load its ActivePath) against a floor read of
the same path (connect + the same recursive query, raw bytes); bytes on disk against raw
payload bytes (everything the workload handed over, and what is live at the end).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lash
from benchmarks.workload import Turn, turns
from lash import codec
from lash.graph import new_node_id
from lash.model import Node

PROFILES = ("low_latency", "balanced", "compact")
RESUME_REPEATS = 5


@dataclass
class Run:
    """One store's measurements."""

    name: str
    latencies: list[float] = field(default_factory=list)
    resume: float = 0.0
    disk_bytes: int = 0


def window_median(latencies: Sequence[float], turn: int) -> float:
    """Median latency of the 21 turns centred on ``turn`` (1-based), clipped to the run."""
    lo = max(1, min(turn - 10, len(latencies) - 20))
    return statistics.median(latencies[lo - 1 : lo + 20])


def disk_usage(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def median_time(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(RESUME_REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


NodeRows = tuple[tuple[str, str | None, bytes], ...]


def encoded_nodes(workload: Sequence[Turn]) -> list[NodeRows]:
    """Per turn, the (id, parent, record bytes) of its two nodes, as lash encodes them."""
    out = []
    parent: str | None = None
    for turn in workload:
        rows = []
        for role, content in (("user", turn.user), ("assistant", turn.assistant)):
            node = Node(new_node_id(), parent, "message", {"role": role, "content": content}, time.time())
            rows.append((node.node_id, parent, codec.encode(node)))
            parent = node.node_id
        out.append(tuple(rows))
    return out


class SnapshotPlugin:
    """An in-process plugin whose snapshot changes when the workload says so."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return self.state


class LashStore:
    """lash + lash-sqlite through the public API, default config but for the blob profile."""

    def __init__(self, profile: str, root: Path) -> None:
        self.run = Run(f"lash {profile}")
        self.directory = root / f"lash-{profile}"
        self.plugin = SnapshotPlugin()
        options = {"path": str(self.directory), "blob_profile": profile}
        self.handle = lash.open({"store": {"backend": "sqlite", "options": options}}, plugins=[self.plugin])
        self.session = self.handle.session("bench")

    def turn(self, turn: Turn, nodes: NodeRows) -> None:
        session = self.session
        session.append_message("user", turn.user)
        session.append_message("assistant", turn.assistant)
        session.record_usage("agent", "model", lash.TokenUsage(input_tokens=turn.usage[0], output_tokens=turn.usage[1]))
        session.set_execution_state(turn.execution_state)
        if turn.tools is not None:
            session.tools.replace(turn.tools)
            self.plugin.state = turn.plugin_state
        start = time.perf_counter()
        session.commit()
        self.run.latencies.append(time.perf_counter() - start)

    def finish(self) -> Run:
        self.session.close()
        self.run.resume = median_time(self._resume)
        self.handle.close()
        self.run.disk_bytes = disk_usage(self.directory)
        return self.run

    def _resume(self) -> None:
        session = self.handle.session("bench", residency="active_path")
        assert len(session.graph) > 0
        session.close()


_FLOOR_PATH = """
WITH RECURSIVE path (node_id, parent_id, data) AS (
    SELECT node_id, parent_id, data FROM nodes WHERE node_id = ?
    UNION ALL
    SELECT n.node_id, n.parent_id, n.data FROM nodes AS n JOIN path AS p ON n.node_id = p.parent_id
)
SELECT data FROM path
"""


class FloorStore:
    """Plain sqlite3, WAL, ``synchronous=NORMAL``, one transaction per turn, pre-encoded bytes."""

    def __init__(self, name: str, root: Path, *, with_state: bool) -> None:
        self.run = Run(name)
        self.with_state = with_state
        self.directory = root / name.replace(" ", "-").replace("+", "-")
        self.directory.mkdir()
        self.path = self.directory / "floor.db"
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE nodes (seq INTEGER PRIMARY KEY, node_id TEXT UNIQUE, parent_id TEXT, data BLOB)"
        )
        self.conn.execute("CREATE TABLE blobs (seq INTEGER PRIMARY KEY, data BLOB)")
        self.conn.execute("CREATE TABLE head (id INTEGER PRIMARY KEY, data BLOB)")
        self.leaf = ""
        self.count = 0

    def turn(self, turn: Turn, nodes: NodeRows) -> None:
        blobs = []
        if self.with_state:
            blobs = [(turn.execution_state,)]
            if turn.tools is not None:
                blobs += [(codec.pack(turn.tools),), (codec.pack(turn.plugin_state),)]
        conn = self.conn
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO nodes (node_id, parent_id, data) VALUES (?, ?, ?)", nodes)
        if self.with_state:
            conn.executemany("INSERT INTO blobs (data) VALUES (?)", blobs)
            conn.execute("INSERT OR REPLACE INTO head (id, data) VALUES (1, ?)", (nodes[-1][0].encode(),))
        conn.execute("COMMIT")
        self.run.latencies.append(time.perf_counter() - start)
        self.leaf = nodes[-1][0]
        self.count += len(nodes)

    def finish(self) -> Run:
        self.conn.close()
        self.run.resume = median_time(self._read_path)
        self.run.disk_bytes = disk_usage(self.directory)
        return self.run

    def _read_path(self) -> None:
        conn = sqlite3.connect(self.path)
        assert len(conn.execute(_FLOOR_PATH, (self.leaf,)).fetchall()) == self.count
        conn.close()


def live_payload(workload: Sequence[Turn]) -> int:
    """Raw bytes still live at the end: every message, the last state and snapshots."""
    text = sum(len(t.user.encode()) + len(t.assistant.encode()) for t in workload)
    snap = next(t for t in reversed(workload) if t.tools is not None)
    snapshots = len(json.dumps(snap.tools).encode()) + len(json.dumps(snap.plugin_state).encode())
    return text + len(workload[-1].execution_state) + snapshots


def report(runs: list[Run], floors: list[Run], workload: Sequence[Turn], elapsed: float) -> str:
    marks = [n for n in (10, 100, 1000, 10_000, 100_000) if n <= len(workload)]
    written = sum(t.payload_bytes for t in workload)
    live = live_payload(workload)
    ms = 1000.0
    lines = [
        f"reference workload: {len(workload)} turns, {2 * len(workload)} nodes, "
        f"{written / 1e6:.1f} MB raw payload written, {live / 1e6:.1f} MB live at the end",
        "",
        "commit latency, median of the 21 turns around turn N (ms)",
        f"{'store':<22}" + "".join(f"{'@' + str(n):>10}" for n in marks) + f"{'@1000/@10':>11}",
    ]
    for run in [*runs, *floors]:
        cells = [window_median(run.latencies, n) * ms for n in marks]
        growth = (cells[marks.index(1000)] / cells[0]) if 1000 in marks else float("nan")
        lines.append(f"{run.name:<22}" + "".join(f"{c:>10.3f}" for c in cells) + f"{growth:>10.2f}x")
    lines += ["", "commit latency ratio to floor (lash / floor at the same turn)"]
    for floor in floors:
        for run in runs:
            ratios = [window_median(run.latencies, n) / window_median(floor.latencies, n) for n in marks]
            lines.append(f"{run.name + ' / ' + floor.name:<44}" + "".join(f"{r:>8.2f}x" for r in ratios))
    lines += [
        "",
        f"resume: open + ActivePath load of {2 * len(workload)} nodes (median of {RESUME_REPEATS}, ms)",
    ]
    floor_resume = floors[0].resume
    for run in runs:
        lines.append(f"{run.name:<22}{run.resume * ms:>10.1f}   {run.resume / floor_resume:>6.2f}x floor")
    lines.append(f"{'floor path read':<22}{floor_resume * ms:>10.1f}")
    lines += ["", "bytes on disk"]
    for run in [*runs, *floors]:
        lines.append(
            f"{run.name:<22}{run.disk_bytes / 1e6:>9.2f} MB   {run.disk_bytes / written:>5.2f}x written payload"
            f"   {run.disk_bytes / live:>5.2f}x live payload"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += ["", f"peak RSS {peak:.0f} MB (whole run, all stores), wall time {elapsed:.0f} s"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5000, help="turns to run (default 5000 = 10,000 nodes)")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=PROFILES)
    args = parser.parse_args(argv)
    begin = time.perf_counter()
    workload = list(turns(args.turns))
    nodes = encoded_nodes(workload)
    root = Path(tempfile.mkdtemp(prefix="lash-bench-"))
    try:
        floors = [
            FloorStore("floor nodes", root, with_state=False),
            FloorStore("floor nodes+state", root, with_state=True),
        ]
        stores = [LashStore(profile, root) for profile in args.profiles]
        for turn, rows in zip(workload, nodes, strict=True):  # interleaved: machine noise hits every store alike
            for store in (*floors, *stores):
                store.turn(turn, rows)
        floor_runs = [f.finish() for f in floors]
        runs = [s.finish() for s in stores]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report(runs, floor_runs, workload, time.perf_counter() - begin))


if __name__ == "__main__":
    main()
