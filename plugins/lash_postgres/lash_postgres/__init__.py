"""lash-postgres: the multi-host backend, every session of a fleet in one PostgreSQL schema.

Heads, nodes, ledgers and meta live in per-session rows of shared tables; blobs live in one
content-addressed table shared by all sessions (or in ``[blobs]``, e.g. S3). A commit is one
transaction under the session's row lock with a compare-and-swap on the head revision, so
writers on many hosts serialise per session and never lose each other's nodes.
Registered as backend ``postgres`` through the ``lash`` entry point::

    [store]
    backend = "postgres"
    options = { dsn = "postgresql://lash@db.internal:5432/lash", schema = "lash", pool_max = 10 }
"""

from __future__ import annotations

from collections.abc import Callable

import lash
from lash.plugins import from_options
from lash_postgres.backend import PostgresBackend
from lash_postgres.errors import DSN_ENV, ConnectionTarget
from lash_postgres.migrations import SCHEMA_VERSION
from lash_postgres.storage import PostgresBlobStorage, PostgresSessionStorage, PostgresTransaction

__all__ = [
    "DSN_ENV",
    "SCHEMA_VERSION",
    "ConnectionTarget",
    "PostgresBackend",
    "PostgresBlobStorage",
    "PostgresSessionStorage",
    "PostgresTransaction",
]


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("postgres", from_options(PostgresBackend))
