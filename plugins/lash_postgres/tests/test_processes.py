"""Hosts of a fleet as real OS processes, each with its own pool, on one real server."""

from __future__ import annotations

import multiprocessing
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
    assert [host.exitcode for host in hosts] == [0] * len(hosts)
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


def _wait_for(condition: Callable[[], bool], what: str, hosts: list[multiprocessing.Process]) -> None:
    """Until ``condition()``; a host that ended meanwhile has failed (the caller's ``_finish`` says why)."""
    deadline = time.monotonic() + 180  # as long as _finish waits: a loaded machine is slow, not broken
    while not condition():
        if not all(host.is_alive() for host in hosts):
            return
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_server_restart_mid_run_loses_no_committed_data(
    config: dict[str, Any], store_options: dict[str, Any], postgres_server: PostgresServer
) -> None:
    # Each host commits to its own session until stopped (hosts sharing sessions are tested above;
    # here a fast host could starve a slow one). The restart comes once every host has committed,
    # so each is past opening its session and mid-run, and the run goes on until each has committed
    # again after it: every host lives through the restart, however fast or slow the machine.
    hosts_count, before, after = 4, 3, 3
    progress = FORK.Array("i", hosts_count, lock=False)
    stop = FORK.Event()
    args = [(_host_config(config), f"host{i}", f"restart-{i}", progress, i, stop) for i in range(hosts_count)]
    processes, queue = _start(survive, args)
    try:
        _wait_for(lambda: min(progress) >= before, f"every host committed {before} messages", processes)
        postgres_server.restart()
        restarted_at = list(progress)
        _wait_for(
            lambda: all(p >= r + after for p, r in zip(progress, restarted_at, strict=True)),
            f"every host committed {after} more messages after the restart",
            processes,
        )
    finally:
        stop.set()
    results = _finish(processes, queue)
    assert all(r["commits"] >= before + after for r in results), "a host did not live through the restart"

    errors = [e for r in results for e in r["errors"]]
    assert all("PostgreSQL at postgresql://" in e for e in errors), errors
    committed = {r["name"]: r["commits"] for r in results}
    backend = PostgresBackend(**store_options)
    try:
        for host in range(hosts_count):
            store = backend.open_session(f"restart-{host}", create=False)
            assert store is not None
            read = store.load_session(FullGraph())
            store.close()
            assert read is not None
            texts = Counter(node.body["content"] for node in read.graph.nodes.values())
            expected = {f"host{host}:{i}" for i in range(committed[f"host{host}"])}
            assert set(texts) == expected and set(texts.values()) == {1}
            assert read.head_revision >= len(expected)  # a commit retried after its lost ack may add one
            assert len(read.graph.active_path()) == len(expected)
    finally:
        backend.close()
