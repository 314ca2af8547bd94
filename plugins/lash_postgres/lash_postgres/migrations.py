"""The schema lash keeps in PostgreSQL, as numbered migrations recorded in a version table.

Every host opening the backend calls :func:`migrate`. When the schema is current that is one
query; otherwise the migrations run in one transaction under an advisory lock keyed on the
schema name, so hosts starting together apply each migration exactly once and the others
wait, then find nothing left to do. A schema stamped by a newer lash is refused with
:class:`~lash.errors.SchemaVersionError` and left untouched.
"""

from __future__ import annotations

import attrs
import psycopg
import psycopg.errors

from lash.errors import SchemaVersionError


@attrs.frozen
class Migration:
    """One step of the schema; ``ddl`` names the schema as ``{s}``."""

    version: int
    description: str
    ddl: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, heads, nodes, ledger and meta per session; one content-addressed blob table",
        """
        CREATE TABLE {s}.sessions (
            session_id text PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {s}.heads (
            session_id text PRIMARY KEY REFERENCES {s}.sessions ON DELETE CASCADE,
            revision bigint NOT NULL,
            data bytea NOT NULL
        );
        CREATE TABLE {s}.nodes (
            session_id text NOT NULL REFERENCES {s}.sessions ON DELETE CASCADE,
            seq bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order
            node_id text NOT NULL,
            parent_id text,
            tombstoned boolean NOT NULL DEFAULT false,
            data bytea NOT NULL,
            PRIMARY KEY (session_id, node_id)
        );
        CREATE INDEX nodes_in_order ON {s}.nodes (session_id, seq);
        CREATE TABLE {s}.ledger (
            session_id text NOT NULL REFERENCES {s}.sessions ON DELETE CASCADE,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            source text NOT NULL,
            model text NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (session_id, source, model)
        );
        CREATE TABLE {s}.meta (
            session_id text PRIMARY KEY REFERENCES {s}.sessions ON DELETE CASCADE,
            data bytea NOT NULL
        );
        CREATE TABLE {s}.blobs (
            ref text PRIMARY KEY,
            envelope bytea NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    Migration(
        2,
        "one index on nodes; room on the pages of heads and ledger for HOT updates",
        # The primary key serves every query on nodes (a full load sorts by seq), so a commit
        # maintains one index per node instead of two. Heads and ledger rows are rewritten by
        # every commit: free space on their pages lets the new version stay on the page (a HOT
        # update: no new index entry, the old version pruned in place).
        """
        DROP INDEX {s}.nodes_in_order;
        ALTER TABLE {s}.heads SET (fillfactor = 50);
        ALTER TABLE {s}.ledger SET (fillfactor = 70);
        """,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The version this lash writes; a schema with a larger one was written by a newer lash."""

VERSION_TABLE = "schema_migrations"


def _read_version(conn: psycopg.Connection, quoted_schema: str) -> int | None:
    """The applied version, or None when the schema or its version table does not exist yet."""
    try:
        with conn.transaction():
            row = conn.execute(f"SELECT max(version) FROM {quoted_schema}.{VERSION_TABLE}").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if row is None or row[0] is None else int(row[0])


def _check(found: int | None, schema: str) -> None:
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION, f"PostgreSQL schema {schema!r}")


def migrate(conn: psycopg.Connection, schema: str, quoted_schema: str) -> int:
    """Bring ``schema`` to :data:`SCHEMA_VERSION` on ``conn`` (autocommit); returns how many migrations ran."""
    found = _read_version(conn, quoted_schema)
    _check(found, schema)
    if found == SCHEMA_VERSION:
        return 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"lash migrations {schema}",))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted_schema}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted_schema}.{VERSION_TABLE} ("
            " version integer PRIMARY KEY, description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute(f"SELECT max(version) FROM {quoted_schema}.{VERSION_TABLE}").fetchone()
        found = None if row is None or row[0] is None else int(row[0])
        _check(found, schema)
        pending = [m for m in MIGRATIONS if m.version > (found or 0)]
        for migration in pending:
            conn.execute(migration.ddl.format(s=quoted_schema))
            conn.execute(
                f"INSERT INTO {quoted_schema}.{VERSION_TABLE} (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
    return len(pending)
