"""The ``s3`` backend over HTTP against a moto S3 server: resume in a fresh process, racing writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

from lash_s3 import s3_backend

import lash
from lash.model import ActivePath, FullGraph
from lash.testing import SessionWriter, message

from .test_end_to_end import play_turns

RESUME_SCRIPT = """
import json, sys, lash
from lash.model import ActivePath, FullGraph
with lash.open(json.loads(sys.argv[1])) as handle:
    store = handle.backend.open_session("agent", create=False)
    print(repr(store.load_session(FullGraph())))
    print(repr(store.load_session(ActivePath())))
    print(repr(store.load_meta()))
    store.close()
"""


def s3_store_config(s3_options: dict[str, Any]) -> dict[str, Any]:
    return {
        "store": {"backend": "s3", "options": s3_options},
        "compaction": {"strategy": "keep-recent", "options": {"keep_last": 2}},
        "gc": {"auto_every_commits": 0},
    }


def test_session_committed_by_one_process_resumes_identically_in_a_fresh_process(
    s3_options: dict[str, Any], fake_aws_credentials: dict[str, str]
) -> None:
    config = s3_store_config({**s3_options, "prefix": "fleet"})
    with lash.open(config) as handle:
        session = handle.session("agent")
        play_turns(session, 4)
        assert session.compact()
        play_turns(session, 2, start=4)
        store = handle.backend.open_session("agent", create=False)
        assert store is not None
        full = store.load_session(FullGraph())
        expected = "\n".join(repr(x) for x in (full, store.load_session(ActivePath()), store.load_meta()))
        store.close()
    assert full is not None and full.head_revision == 7
    assert full.checkpoint.execution_state == b"execution state after turn 5\n" * 200
    assert [frame.reason for frame in full.agent_frames] == ["initial", "compaction"]
    fresh_config = s3_store_config({**s3_options, "prefix": "fleet", "create_bucket": False})
    result = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, json.dumps(fresh_config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=fake_aws_credentials,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_racing_writers_on_one_session_each_revision_has_exactly_one_winner(s3_options: dict[str, Any]) -> None:
    writers, rounds = 4, 6
    backends = [s3_backend(**s3_options, gc_grace_seconds=0) for _ in range(writers)]
    stores = [backend.open_session("contended") for backend in backends]
    barrier = threading.Barrier(writers)
    outcomes: dict[int, list[tuple[int, str]]] = {r: [] for r in range(rounds)}
    errors: list[BaseException] = []

    def write(index: int) -> None:
        store = stores[index]
        assert store is not None
        try:
            for r in range(rounds):
                barrier.wait(timeout=60)  # everyone reads the same head ...
                head = store.load_head()
                writer = SessionWriter(store, head.revision if head else None, head.leaf_node_id if head else None)
                barrier.wait(timeout=60)  # ... then everyone tries to move it
                try:
                    result = writer.append(message(f"r{r}-w{index}", writer.leaf))
                    outcomes[r].append((index, f"won revision {result.head_revision}"))
                except lash.HeadRevisionConflict as conflict:
                    assert conflict.actual == r + 1
                    outcomes[r].append((index, "conflict"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    winners = []
    for r in range(rounds):
        won = [(index, what) for index, what in outcomes[r] if what != "conflict"]
        assert len(outcomes[r]) == writers
        assert [what for _, what in won] == [f"won revision {r + 1}"], outcomes[r]
        winners.append(f"r{r}-w{won[0][0]}")
    read = stores[0].load_session(FullGraph())  # type: ignore[union-attr]
    assert read is not None and read.head_revision == rounds
    assert list(read.graph.nodes) == winners  # every loser's segment stayed invisible
    for store, backend in zip(stores, backends, strict=True):
        store.close()  # type: ignore[union-attr]
        backend.close()
