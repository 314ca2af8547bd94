"""The PostgreSQL server the benchmark's ``postgres`` systems run on.

Either the server of ``--postgres-dsn`` / ``$LASH_BENCH_POSTGRES_DSN`` (its role needs
``CREATEDB``), or a throwaway one started from the installed PostgreSQL binaries with the
same code the tests use (:class:`lash_postgres.server.PostgresServer`), stopped at the end.
The throwaway server is *durable*: ``fsync``, ``synchronous_commit`` and ``full_page_writes``
at PostgreSQL's defaults (on), so every commit is flushed to disk before it returns.

Each measured run gets a database of its own, dropped after it; the systems pass its DSN
to their process in :data:`RUN_DSN_ENV`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

DSN_ENV = "LASH_BENCH_POSTGRES_DSN"
"""The server to benchmark on, when ``--postgres-dsn`` is not given."""

RUN_DSN_ENV = "LASH_BENCH_POSTGRES_RUN_DSN"
"""Set by the runner for one measuring process: the DSN of that run's fresh database."""


@contextmanager
def server(dsn: str | None, *, durable: bool = True) -> Iterator[str]:
    """``dsn`` (else ``$LASH_BENCH_POSTGRES_DSN``), or a throwaway server's for the block.

    ``durable=False`` starts the throwaway server with ``fsync`` off, as the tests do: commit
    latency then shows round trips and CPU, not the disk (noisy on a shared machine).
    """
    dsn = dsn or os.environ.get(DSN_ENV)
    if dsn:
        yield dsn
        return
    from lash_postgres.server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(f"no PostgreSQL binaries (apt-get install postgresql); or give --postgres-dsn / ${DSN_ENV}")
    with PostgresServer(bindir, durable=durable) as throwaway:
        yield throwaway.dsn()


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """The DSN of a new, empty database on ``dsn``'s server, dropped after the block."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"lash_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(dsn, dbname=name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_dsn() -> str:
    """This measuring process's database (see :data:`RUN_DSN_ENV`)."""
    dsn = os.environ.get(RUN_DSN_ENV)
    if not dsn:
        raise SystemExit(f"${RUN_DSN_ENV} is not set: run postgres systems through `python -m benchmarks run`")
    return dsn


def fresh_schema() -> str:
    return f"bench_{uuid.uuid4().hex[:12]}"


def schema_bytes(dsn: str, schema: str) -> int:
    """Bytes of every table of ``schema`` with its indexes and TOAST: what it takes on disk."""
    import psycopg

    statement = (
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute(statement, (schema,)).fetchone()[0])
