"""lash-postgres: the multi-host backend, every session of a fleet in one PostgreSQL schema.

Heads, nodes, ledgers and meta live in per-session rows of shared tables; blobs live in one
content-addressed table shared by all sessions (or in ``[blobs]``, e.g. S3). A commit is one
transaction under the session's row lock with a compare-and-swap on the head revision, so
writers on many hosts serialise per session and never lose each other's nodes.
Registered as backend ``postgres`` through the ``lash`` entry point::

    [store]
    backend = "postgres"
    options = { dsn = "postgresql://lash@db.internal:5432/lash", schema = "lash", pool_max = 10 }

psycopg is imported only when a ``postgres`` backend is built, so loading this entry point
costs nothing to a configuration that does not use PostgreSQL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lash
from lash.blobs import BlobProfile
from lash.plugins import from_options

if TYPE_CHECKING:
    from lash_postgres.backend import PostgresBackend

__all__ = [
    "DSN_ENV",
    "SCHEMA_VERSION",
    "ConnectionTarget",
    "PostgresBackend",
    "PostgresBlobStorage",
    "PostgresSessionStorage",
    "PostgresTransaction",
    "postgres_backend",
]

_LAZY = {
    "DSN_ENV": "lash_postgres.errors",
    "ConnectionTarget": "lash_postgres.errors",
    "SCHEMA_VERSION": "lash_postgres.migrations",
    "PostgresBackend": "lash_postgres.backend",
    "PostgresBlobStorage": "lash_postgres.storage",
    "PostgresSessionStorage": "lash_postgres.storage",
    "PostgresTransaction": "lash_postgres.storage",
}


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY` on first use (their modules import psycopg)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lash_postgres' has no attribute {name!r}")


def postgres_backend(
    *,
    dsn: str | None = None,
    schema: str = "lash",
    pool_min: int = 1,
    pool_max: int = 10,
    connect_timeout: float = 10.0,
    statement_timeout: float = 30.0,
    blob_profile: str = BlobProfile.BALANCED,
    gc_grace_seconds: float = 3600.0,
) -> PostgresBackend:
    """The ``postgres`` backend (``[store] backend = "postgres"``); see :class:`PostgresBackend`.

    The options are :class:`PostgresBackend`'s (a test keeps the two signatures equal); this
    function only exists so that psycopg is imported when a backend is built, not before.
    """
    from lash_postgres.backend import PostgresBackend

    return PostgresBackend(
        dsn=dsn,
        schema=schema,
        pool_min=pool_min,
        pool_max=pool_max,
        connect_timeout=connect_timeout,
        statement_timeout=statement_timeout,
        blob_profile=blob_profile,
        gc_grace_seconds=gc_grace_seconds,
    )


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("postgres", from_options(postgres_backend))
