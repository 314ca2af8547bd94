"""A real, throwaway PostgreSQL server for test suites (pytest plugin, entry point ``pytest11``).

Installing lash-postgres makes these fixtures available to every test suite:

* ``postgres_server`` (session scope): a :class:`~lash_postgres.server.PostgresServer`
  (``initdb`` and ``pg_ctl`` in a temporary directory, on 127.0.0.1 and a free port, with
  ``fsync`` off), stopped and removed at the end.
* ``postgres_dsn``: the DSN of a fresh database, dropped after the test.
* ``postgres_schema``: a fresh schema name in the server's shared database (for lash's
  ``options.schema``; much cheaper than a database), dropped after the test.

Without PostgreSQL binaries the tests that use them skip, unless ``$LASH_REQUIRE_POSTGRES``
is set (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from psycopg import sql

from lash_postgres.server import PASSWORD_ROLE, PostgresServer, find_bindir

__all__ = ["PASSWORD_ROLE", "REQUIRE_ENV", "PostgresServer", "drop_schema", "find_bindir"]

REQUIRE_ENV = "LASH_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session, stopped and removed at the end."""
    bindir = find_bindir()
    if bindir is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"${REQUIRE_ENV} is set but there are {reason}", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh, empty database on :func:`postgres_server`, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.dsn(name)
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_schema(postgres_server: PostgresServer) -> Iterator[str]:
    """A schema name no other test uses, in ``postgres_server.dsn()``'s database; dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    drop_schema(postgres_server, name)


def drop_schema(server: PostgresServer, name: str) -> None:
    """Drop schema ``name`` and everything in it, if it exists."""
    server.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
