"""What lash-postgres promises beyond the shared contract: its schema, listing, deletion, GC, the head CAS."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from lash_postgres import SCHEMA_VERSION, PostgresBackend
from lash_postgres.testing import PostgresServer
from psycopg import sql

from lash import codec
from lash.errors import HeadRevisionConflict, SchemaVersionError
from lash.model import HydratedCheckpoint, SessionMeta
from lash.store import StandardSessionStore, StoredNode
from lash.testing import SessionWriter, chain, message, usage

from .conftest import BackendFactory


def _rows(server: PostgresServer, schema: str, query: str, *params: object) -> list[tuple]:
    with server.connect() as conn:
        return conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), params).fetchall()


def _commit(backend: PostgresBackend, session_id: str, *texts: str, execution_state: bytes | None = None) -> None:
    store = backend.open_session(session_id)
    assert store is not None
    try:
        store.save_meta(SessionMeta(session_id, session_id, 0.0, "m", cwd="/work"))
        nodes = [message(f"u{i}", f"u{i - 1}" if i else None, "user", text) for i, text in enumerate(texts)]
        SessionWriter(store).append(
            *nodes, checkpoint=HydratedCheckpoint(execution_state=execution_state), usage_deltas=[usage("a", "m", 5)]
        )
    finally:
        store.close()


# -- schema and migrations ---------------------------------------------------------------------


def test_migrations_run_once_and_record_their_version(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    make_backend().close()
    make_backend().close()
    versions = _rows(postgres_server, postgres_schema, "SELECT version FROM {s}.schema_migrations")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def _open_at(dsn: str, schema: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    PostgresBackend(dsn=dsn, schema=schema).close()


def test_hosts_starting_together_migrate_exactly_once(postgres_server: PostgresServer, postgres_schema: str) -> None:
    start_at = time.time() + 0.5
    fork = multiprocessing.get_context("fork")
    hosts = [fork.Process(target=_open_at, args=(postgres_server.dsn(), postgres_schema, start_at)) for _ in range(4)]
    for host in hosts:
        host.start()
    for host in hosts:
        host.join(60)
    assert [host.exitcode for host in hosts] == [0] * 4
    versions = _rows(postgres_server, postgres_schema, "SELECT version FROM {s}.schema_migrations")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_schema_from_a_newer_lash_is_refused_and_left_untouched(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    _commit(make_backend(), "kept", "hello")
    newer = SCHEMA_VERSION + 1
    _rows(
        postgres_server, postgres_schema, "INSERT INTO {s}.schema_migrations VALUES (%s, 'future') RETURNING 1", newer
    )
    with pytest.raises(SchemaVersionError) as info:
        make_backend()
    assert (info.value.found, info.value.supported) == (newer, SCHEMA_VERSION)
    assert postgres_schema in str(info.value)
    assert _rows(postgres_server, postgres_schema, "SELECT session_id FROM {s}.sessions") == [("kept",)]


# -- listing and deleting ----------------------------------------------------------------------


def test_list_sessions_reads_head_summaries_not_nodes(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    backend = make_backend()
    _commit(backend, "one", "first question", "second question")
    _commit(backend, "two", "other")
    _rows(postgres_server, postgres_schema, "DELETE FROM {s}.nodes RETURNING 1")  # listing must not need them
    infos = {info.session_id: info for info in backend.list_sessions()}
    assert (infos["one"].first_user_message, infos["one"].user_message_count, infos["one"].cwd) == (
        "first question",
        2,
        "/work",
    )
    assert (infos["two"].first_user_message, infos["two"].head_revision) == ("other", 1)


def test_delete_session_removes_every_row_it_owns_and_gc_its_blobs(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    backend = make_backend(gc_grace_seconds=0)
    _commit(backend, "doomed", "bye", execution_state=b"doomed state")
    _commit(backend, "kept", "hi", execution_state=b"kept state")
    assert backend.delete_session("doomed") is True
    for table in ("sessions", "heads", "nodes", "ledger", "meta"):  # one row of each per session here
        query = "SELECT session_id, count(*) FROM {s}." + table + " GROUP BY session_id"
        assert _rows(postgres_server, postgres_schema, query) == [("kept", 1)], table
    report = backend.gc()
    assert report.deleted_blob_count == 2  # the doomed session's manifest and execution state
    store = backend.open_session("kept", create=False)
    assert store is not None
    read = store.load_session()
    store.close()
    assert read is not None and read.checkpoint.execution_state == b"kept state"


def test_hostile_session_id_is_stored_verbatim_as_data(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    hostile = 'x\'); DROP TABLE nodes; --\\\\ "quoted" $1 %s'
    _commit(make_backend(), hostile, "payload")
    assert _rows(postgres_server, postgres_schema, "SELECT session_id FROM {s}.sessions") == [(hostile,)]
    assert _rows(postgres_server, postgres_schema, "SELECT count(*) FROM {s}.nodes WHERE session_id = %s", hostile) == [
        (1,)
    ]


# -- the head compare-and-swap -------------------------------------------------------------------


def test_head_cas_against_a_moved_revision_conflicts_and_leaves_nothing(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    backend = make_backend()
    store = backend.open_session("cas")
    assert isinstance(store, StandardSessionStore)
    writer = SessionWriter(store)
    writer.append(*chain("a"))
    with pytest.raises(HeadRevisionConflict) as info, store.storage.transaction(write=True) as txn:
        txn.insert_nodes([_stored("b", "a")])
        # A writer that bypassed the session lock moves the head meanwhile.
        _rows(postgres_server, postgres_schema, "UPDATE {s}.heads SET revision = 7 RETURNING 1")
        txn.write_head(2, b"head that must not land")
    assert (info.value.expected, info.value.actual) == (1, 7)
    assert store.load_node("b") is None
    assert _rows(postgres_server, postgres_schema, "SELECT revision FROM {s}.heads") == [(7,)]
    store.close()


def _stored(node_id: str, parent_id: str) -> StoredNode:
    return StoredNode(node_id, parent_id, codec.encode(message(node_id, parent_id)))


# -- GC of the shared blob table -------------------------------------------------------------------


def _age(server: PostgresServer, schema: str, ref: str, seconds: float) -> None:
    query = "UPDATE {s}.blobs SET stored_at = now() - make_interval(secs => %s) WHERE ref = %s RETURNING 1"
    assert _rows(server, schema, query, seconds, ref)


def test_gc_keeps_young_unreferenced_blobs_and_deletes_old_ones(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    backend = make_backend(gc_grace_seconds=600)
    blobs = backend.blobs
    assert blobs is not None
    young, old = blobs.put(b"written a moment ago"), blobs.put(b"written long ago")
    _age(postgres_server, postgres_schema, old, 3600)
    report = backend.gc()
    assert (report.deleted_blob_count, blobs.has(young), blobs.has(old)) == (1, True, False)


def test_gc_never_deletes_a_blob_that_a_commit_in_flight_reuses(
    make_backend: BackendFactory, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    """The commit refreshes the old blob's age inside its transaction; GC waits for it, then keeps it."""
    backend = make_backend(gc_grace_seconds=600)
    blobs = backend.blobs
    assert blobs is not None
    content = b"a tool catalogue another session dropped long ago"
    ref = blobs.put(content)
    _age(postgres_server, postgres_schema, ref, 3600)
    store = backend.open_session("in-flight")
    assert isinstance(store, StandardSessionStore)
    written, release = threading.Event(), threading.Event()

    def commit_in_flight() -> None:
        with store.storage.transaction(write=True):
            assert blobs.put(content) == ref  # joins the transaction: stored_at refreshed, not yet committed
            written.set()
            release.wait(10)

    committer = threading.Thread(target=commit_in_flight)
    committer.start()
    assert written.wait(10)
    reports = []
    collector = threading.Thread(target=lambda: reports.append(backend.gc()))
    collector.start()
    collector.join(1.0)
    assert collector.is_alive(), "GC must wait for the commit that holds the blob"
    release.set()
    committer.join(10)
    collector.join(10)
    assert reports[0].deleted_blob_count == 0
    assert blobs.get(ref) == content
    store.close()


def test_default_schema_in_a_fresh_database(postgres_dsn: str) -> None:
    backend = PostgresBackend(dsn=postgres_dsn)
    try:
        assert (backend.schema, backend.list_sessions()) == ("lash", [])
        _commit(backend, "first", "hello")
        assert [info.session_id for info in backend.list_sessions()] == ["first"]
    finally:
        backend.close()
