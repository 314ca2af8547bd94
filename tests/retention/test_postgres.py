"""Deleting from PostgreSQL leaves no trace in any table's live rows, and none on disk when encrypted.

What "no byte remains" means physically: a ``DELETE`` leaves the old row versions (dead
tuples) in the table and index files until VACUUM reuses their space, and in the WAL until
its segments are recycled and overwritten. Plain ``VACUUM`` frees the space without zeroing
it, so bytes can stay in a page's free space; ``VACUUM (FULL)`` rewrites the tables into new
files. Only ``[encryption]`` keeps plaintext out of dead tuples, free space and WAL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import lash

pytest.importorskip("lash_postgres")
from lash_postgres.testing import PostgresServer
from psycopg import sql

SHARED_TOOL = {"name": "shared_lookup", "description": "looks things up for everyone"}


def marker(label: str) -> str:
    return f"UNIQUE-{label}-{uuid.uuid4().hex}"


class Schema:
    """One schema's tables read through SQL behind lash's back, and the server's data directory."""

    def __init__(self, server: PostgresServer, name: str) -> None:
        self.server = server
        self.name = name
        self.conn = server.connect()

    def _query(self, query: sql.Composable, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def table(self, table: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.name), sql.Identifier(table))

    def tables(self) -> list[str]:
        query = sql.SQL("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1")
        return [row[0] for row in self._query(query, (self.name,))]

    def tables_holding(self, text: str) -> list[str]:
        """Tables with a live row holding ``text``: in a text column, or in a ``bytea`` value's raw bytes."""
        needle = text.encode()
        holding = []
        for table in self.tables():
            rows = self._query(sql.SQL("SELECT t::text, t.* FROM {} AS t").format(self.table(table)))
            values = (v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row)
            if any(needle in value for value in values):
                holding.append(table)
        return holding

    def rows_of_session(self, session_id: str) -> dict[str, int]:
        """Rows keyed by ``session_id`` in every table that has a ``session_id`` column (only those > 0)."""
        query = sql.SQL(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s AND column_name = 'session_id'"
        )
        counts = {}
        for (table,) in self._query(query, (self.name,)):
            statement = sql.SQL("SELECT count(*) FROM {} WHERE session_id = %s").format(self.table(table))
            counts[table] = self._query(statement, (session_id,))[0][0]
        assert {"sessions", "heads", "nodes", "ledger", "meta"} <= set(counts)
        return {table: count for table, count in counts.items() if count}

    def blob_refs(self) -> set[str]:
        return {row[0] for row in self._query(sql.SQL("SELECT ref FROM {}").format(self.table("blobs")))}

    def maintain(self, command: str) -> None:
        """Run ``command`` (``VACUUM (FULL)``, ``ANALYZE``) on every table of the schema."""
        for table in self.tables():
            self.conn.execute(sql.SQL(command + " {}").format(self.table(table)))

    def statistics_holding(self, text: str) -> list[str]:
        """Columns whose planner statistics (``pg_stats``: most common values, histograms) hold ``text``."""
        query = sql.SQL(
            "SELECT tablename || '.' || attname FROM pg_stats AS s WHERE schemaname = %s"
            " AND (position(%s in s::text) > 0 OR position(%s in s::text) > 0) ORDER BY 1"
        )
        return [row[0] for row in self._query(query, (self.name, text, text.encode().hex()))]

    def database_directory(self) -> str:
        """The data directory's folder of this schema's database (``base/<oid>``)."""
        return f"base/{self._query(sql.SQL('SELECT oid FROM pg_database WHERE datname = current_database()'))[0][0]}"

    def files_holding(self, text: str, under: str = "") -> list[str]:
        """Files of the server's data directory (below ``under``) holding ``text``, after a checkpoint.

        ``CHECKPOINT`` writes every dirty page to the data files, so nothing hides in shared buffers.
        """
        self.conn.execute("CHECKPOINT")
        needle, root = text.encode(), self.server.data
        found = []
        for path in sorted((root / under).rglob("*")):
            try:
                if path.is_file() and needle in path.read_bytes():
                    found.append(str(path.relative_to(root)))
            except FileNotFoundError:  # a temporary file the server removed meanwhile
                continue
        return found


@pytest.fixture
def schema(postgres_server: PostgresServer, postgres_schema: str) -> Iterator[Schema]:
    schema = Schema(postgres_server, postgres_schema)
    yield schema
    schema.conn.close()


@pytest.fixture
def pg_config(postgres_server: PostgresServer, postgres_schema: str) -> dict[str, Any]:
    """This test's schema; GC keeps nothing for a grace period; blobs uncompressed, so a scan sees them."""
    options = {"dsn": postgres_server.dsn(), "schema": postgres_schema, "pool_max": 2, "blob_profile": "low_latency"}
    return {
        "store": {"backend": "postgres", "options": options},
        "gc": {"grace_seconds": 0, "auto_every_commits": 0},
        "retention": {"max_sessions": 1},
    }


def record_sessions(handle: lash.Lash, texts: dict[str, str]) -> dict[str, lash.CommitResult]:
    """One session per ``session_id: text``, in order: the text as message, model name and execution state.

    Every session registers :data:`SHARED_TOOL`, so all their heads reference one tool-state blob.
    """
    results = {}
    for session_id, text in texts.items():
        session = handle.session(session_id)
        session.tools.register(SHARED_TOOL)
        session.append_message("user", f"remember {text}")
        session.record_usage("agent", f"{text}-model", lash.TokenUsage(input_tokens=5, output_tokens=1))
        session.set_execution_state(text.encode() * 3)
        results[session_id] = session.commit()
        session.close()
    return results


@pytest.mark.parametrize("removal", ["retention", "delete"])
def test_a_deleted_session_leaves_no_row_and_no_byte_in_any_table_and_shared_blobs_stay(
    removal: str, pg_config: dict[str, Any], schema: Schema
) -> None:
    gone, kept = marker("gone"), marker("kept")
    with lash.open(pg_config) as handle:
        results = record_sessions(handle, {"old": gone, "new": kept})
        old_refs = set(results["old"].manifest.blob_refs()) | {results["old"].checkpoint_ref}
        shared = results["new"].manifest.tool_state_ref
        assert shared == results["old"].manifest.tool_state_ref
        assert {"nodes", "ledger", "blobs"} <= set(schema.tables_holding(gone))  # the scan sees it while it lives
        assert set(schema.rows_of_session("old")) == {"sessions", "heads", "nodes", "ledger", "meta"}
        if removal == "retention":
            report = handle.apply_retention()
            assert report.deleted_session_ids == ["old"]
            gc = report.gc
        else:
            assert handle.delete("old")
            gc = handle.gc()
        assert gc is not None and gc.deleted_blob_count == len(old_refs - {shared})
        assert schema.rows_of_session("old") == {}
        assert schema.tables_holding(gone) == []
        assert {"nodes", "ledger", "blobs"} <= set(schema.tables_holding(kept))
        assert schema.blob_refs() & old_refs == {shared}  # shared with a live session: kept
        resumed = handle.session("new")
        assert resumed.tools.names() == ["shared_lookup"] and resumed.execution_state == kept.encode() * 3


def test_pruned_nodes_leave_no_row_and_no_byte_in_the_tables(pg_config: dict[str, Any], schema: Schema) -> None:
    secret = marker("branch")
    config = {**pg_config, "retention": {"orphaned_branches": "prune"}}
    with lash.open(config) as handle:
        session = handle.session("s")
        session.append_message("user", "kept question")
        root = session.graph.leaf_node_id
        session.append_message("assistant", "kept answer")
        session.commit()
        leaf = session.graph.leaf_node_id
        session.checkout(root)
        session.append_message("user", secret)
        session.commit()
        branch = session.graph.leaf_node_id
        session.checkout(leaf)
        session.commit()
        assert schema.tables_holding(secret) == ["nodes"]
        assert handle.apply_retention().nodes_tombstoned == 1
        assert schema.tables_holding(secret) == []
        node_ids = {
            row[0] for row in schema.conn.execute(sql.SQL("SELECT node_id FROM {}").format(schema.table("nodes")))
        }
        assert branch not in node_ids and {root, leaf} <= node_ids
        assert [m["content"] for m in handle.session("s").messages()] == ["kept question", "kept answer"]
        session.close()


def test_vacuum_full_erases_a_deleted_sessions_dead_rows_from_the_data_files(
    pg_config: dict[str, Any], schema: Schema
) -> None:
    """The documented way to erase a plaintext session physically; the WAL keeps it until recycled."""
    gone, kept = marker("gone"), marker("kept")
    with lash.open(pg_config) as handle:
        record_sessions(handle, {"new": kept, "old": gone})
        assert schema.files_holding(gone, schema.database_directory())  # the scan sees the rows on disk
        assert handle.delete("old") and handle.gc().deleted_blob_count
    schema.maintain("VACUUM (FULL)")
    assert schema.files_holding(gone, schema.database_directory()) == []
    assert schema.files_holding(kept, schema.database_directory())
    assert schema.files_holding(gone, "pg_wal")  # why only encryption keeps plaintext off the disk


def test_planner_statistics_forget_a_deleted_sessions_content_after_gc(
    pg_config: dict[str, Any], schema: Schema
) -> None:
    gone, kept = marker("gone"), marker("kept")
    with lash.open(pg_config) as handle:
        record_sessions(handle, {"new": kept, "old": gone})
        schema.maintain("ANALYZE")  # what autovacuum does once enough rows changed
        assert "ledger.model" in schema.statistics_holding(gone)
        assert handle.delete("old") and handle.gc().deleted_blob_count
        assert schema.statistics_holding(gone) == []


@pytest.fixture
def encrypted_config(monkeypatch: pytest.MonkeyPatch, pg_config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pytest.importorskip("cryptography", reason="encryption at rest needs lash[encryption]")
    from lash.keys import generate_key

    monkeypatch.setenv("LASH_MASTER_KEY", generate_key())
    yield {**pg_config, "encryption": {"key_provider": "env"}}


def test_with_encryption_a_deleted_session_leaves_no_plaintext_anywhere_in_the_data_directory(
    encrypted_config: dict[str, Any], schema: Schema
) -> None:
    """Dead tuples, free space, indexes, planner statistics and WAL only ever held ciphertext."""
    gone, kept = marker("gone"), marker("kept")
    with lash.open(encrypted_config) as handle:
        record_sessions(handle, {"new": kept, "old": gone})
        schema.maintain("ANALYZE")
        assert handle.delete("old") and handle.gc().deleted_blob_count
        assert schema.files_holding(gone) == []
        assert handle.session("new").execution_state == kept.encode() * 3
