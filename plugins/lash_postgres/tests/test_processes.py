"""Hosts of a fleet as real OS processes, each with its own pool, on one real server."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from lash_postgres import PostgresBackend
from lash_postgres.testing import PostgresServer
from psycopg import sql

from lash.model import FullGraph

from ._worker import contend, survive

FORK = multiprocessing.get_context("fork")  # the hosts inherit the imported modules, not a pool


def _host(results: multiprocessing.Queue, work: Callable[..., dict], *args: Any) -> None:
    try:
        results.put(work(*args))
    except BaseException as exc:
        results.put({"failed": f"{type(exc).__name__}: {exc}"})
        raise


def _start(work: Callable[..., dict], args: list[tuple]) -> tuple[list[multiprocessing.Process], multiprocessing.Queue]:
    results: multiprocessing.Queue = FORK.Queue()
    hosts = [FORK.Process(target=_host, args=(results, work, *a)) for a in args]
    for host in hosts:
        host.start()
    return hosts, results


def _finish(hosts: list[multiprocessing.Process], results: multiprocessing.Queue) -> list[dict[str, Any]]:
    summaries = [results.get(timeout=180) for _ in hosts]
    for host in hosts:
        host.join(30)
    failed = [s["failed"] for s in summaries if "failed" in s]
    assert not failed, failed
    assert all(host.exitcode == 0 for host in hosts)
    return summaries


def _host_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with a small pool per host."""
    return {**config, "store": {**config["store"], "options": {**config["store"]["options"], "pool_max": 2}}}


def _node_rows(server: PostgresServer, schema: str) -> Counter[tuple[str, str]]:
    statement = sql.SQL("SELECT session_id, node_id FROM {}.nodes").format(sql.Identifier(schema))
    with server.connect() as conn:
        return Counter(conn.execute(statement).fetchall())


def test_eight_hosts_appending_to_four_sessions_lose_and_duplicate_nothing(
    config: dict[str, Any], store_options: dict[str, Any], postgres_server: PostgresServer
) -> None:
    start_at = time.time() + 1.5  # after every host has opened its sessions
    args = [(_host_config(config), f"host{i}", 6, 4, start_at) for i in range(8)]
    results = _finish(*_start(contend, args))
    assert sum(r["conflicts"] for r in results) > 0, "the hosts never raced; nothing was tested"

    commits = [c for r in results for c in r["commits"]]
    backend = PostgresBackend(**store_options)
    try:
        for session_id in (f"shared-{i}" for i in range(4)):
            mine = [c for c in commits if c["session"] == session_id]
            # Dense revisions: every commit got its own, 1..n, and the head is the last one.
            assert sorted(c["revision"] for c in mine) == list(range(1, len(mine) + 1))
            store = backend.open_session(session_id, create=False)
            assert store is not None
            read = store.load_session(FullGraph())
            store.close()
            assert read is not None and read.head_revision == len(mine)
            assert sorted(read.graph.nodes) == sorted(c["node"] for c in mine)
            # Refresh re-bases a loser's node on the winner's leaf: one chain holding every node.
            assert len(read.graph.active_path()) == len(mine)
    finally:
        backend.close()
    rows = _node_rows(postgres_server, store_options["schema"])
    assert sum(rows.values()) == len(commits) and set(rows.values()) == {1}


def test_server_restart_mid_run_loses_no_committed_data(
    config: dict[str, Any], store_options: dict[str, Any], postgres_server: PostgresServer
) -> None:
    PostgresBackend(**store_options).close()  # the schema exists before the progress poll reads it
    commits = 25
    hosts = _start(survive, [(_host_config(config), f"host{i}", commits, f"restart-{i % 2}") for i in range(4)])
    heads = sql.SQL("SELECT coalesce(sum(revision), 0) FROM {}.heads").format(sql.Identifier(store_options["schema"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # restart once the hosts are well into their run
        with postgres_server.connect() as conn:
            if conn.execute(heads).fetchone()[0] >= 15:
                break
        time.sleep(0.05)
    assert all(host.is_alive() for host in hosts[0]), "the hosts finished before the restart; nothing was tested"
    restarted = threading.Thread(target=postgres_server.restart)
    restarted.start()
    results = _finish(*hosts)
    restarted.join()

    errors = [e for r in results for e in r["errors"]]
    assert all("PostgreSQL at postgresql://" in e for e in errors), errors
    backend = PostgresBackend(**store_options)
    try:
        for session_id, hosts in (("restart-0", (0, 2)), ("restart-1", (1, 3))):
            store = backend.open_session(session_id, create=False)
            assert store is not None
            read = store.load_session(FullGraph())
            store.close()
            assert read is not None
            texts = Counter(node.body["content"] for node in read.graph.nodes.values())
            expected = {f"host{h}:{i}" for h in hosts for i in range(commits)}
            assert set(texts) == expected and set(texts.values()) == {1}
            assert read.head_revision >= len(expected)  # a commit retried after its lost ack may add one
            assert len(read.graph.active_path()) == len(expected)
    finally:
        backend.close()
