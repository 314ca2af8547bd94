"""Real OS processes on real files: concurrent writers and SIGKILL mid-commit."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from lash_sqlite import SqliteBackend

from lash.model import ActivePath, FullGraph

WORKER = str(Path(__file__).with_name("_worker.py"))


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_processes_commit_every_node_exactly_once(sessions_dir: Path) -> None:
    start_at = str(time.time() + 2.0)  # after every worker has imported lash and opened the session
    workers = [_worker("contend", str(sessions_dir), "shared", f"w{i}", "25", start_at) for i in range(4)]
    outputs = [w.communicate(timeout=120) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "sqlite3." not in err
    results = [json.loads(out) for out, _ in outputs]
    appended = [node_id for r in results for node_id in r["appended"]]
    assert sum(r["conflicts"] for r in results) > 0, "the writers never raced; nothing was tested"

    backend = SqliteBackend(path=sessions_dir)
    store = backend.open_session("shared", create=False)
    assert store is not None
    read = store.load_session(FullGraph())
    store.close()
    assert read is not None
    assert read.head_revision == sum(r["commits"] for r in results)
    assert sorted(read.graph.nodes) == sorted(appended)
    raw = sqlite3.connect(backend.session_path("shared"))
    assert raw.execute("SELECT count(*) FROM nodes").fetchone()[0] == len(appended)
    raw.close()
    # Refresh re-bases a loser's nodes onto the winner's leaf: one chain, each writer's order kept.
    path = [node.body["content"] for node in read.graph.active_path()]
    assert len(path) == len(appended)
    for r in results:
        mine = [text for text in path if text.startswith(r["name"] + ":")]
        assert mine == [f"{r['name']}:{i}" for i in range(r["commits"])]


def test_sigkill_mid_commit_never_loses_the_head(sessions_dir: Path) -> None:
    rng = random.Random(20240601)
    last_revision = 0
    for _ in range(20):
        worker = _worker("forever", str(sessions_dir), "crashy")
        assert worker.stdout is not None
        ready = worker.stdout.readline().strip()
        assert ready == "ready", worker.communicate()[1]
        time.sleep(rng.uniform(0.0, 0.06))
        worker.kill()  # SIGKILL on POSIX: no cleanup, no atexit
        worker.communicate()

        backend = SqliteBackend(path=sessions_dir)
        store = backend.open_session("crashy", create=False)
        assert store is not None
        try:
            read = store.load_session(ActivePath())
            full = store.load_session(FullGraph())
            head = store.load_head()
            assert read is not None and full is not None and head is not None
            assert read.head_revision > last_revision
            # Every commit appends exactly two nodes: nothing of a killed commit is visible.
            assert len(read.graph.nodes) == len(full.graph.nodes) == 2 * read.head_revision
            for ref in (head.checkpoint_ref, *head.manifest.blob_refs()):
                assert store.blobs.get(ref) is not None  # get() verifies the sha256
            last_revision = read.head_revision
        finally:
            store.close()
            backend.close()
