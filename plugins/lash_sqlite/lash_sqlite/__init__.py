"""lash-sqlite: the embedded, durable default backend.

One SQLite database per session (WAL mode, commits in ``BEGIN IMMEDIATE``), holding its
nodes, head, ledger, meta and blobs, so a session is one file you can copy or delete.
Registered as backend ``sqlite`` and blob store ``sqlite`` through the ``lash`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable

import lash
from lash.plugins import from_options
from lash_sqlite.backend import SqliteBackend, db_file_name, sqlite_blob_store
from lash_sqlite.storage import SqliteBlobStorage, SqliteSessionStorage, SqliteTransaction

__all__ = [
    "SqliteBackend",
    "SqliteBlobStorage",
    "SqliteSessionStorage",
    "SqliteTransaction",
    "db_file_name",
    "sqlite_blob_store",
]


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("sqlite", from_options(SqliteBackend))


@lash.hookimpl
def lash_register_blob_stores(register: Callable[..., None]) -> None:
    register("sqlite", from_options(sqlite_blob_store))
