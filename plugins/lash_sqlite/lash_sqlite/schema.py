"""The tables of a lash SQLite file, and the version stamped into ``PRAGMA user_version``.

Two kinds of file share this layout: a *session* file (one per session: its nodes, head,
ledger, meta and blobs) and a standalone *blob store* file (``[blobs] backend = "sqlite"``).
The ``lash_identity`` row says which kind a file is and, for a session, its exact id, so
listing sessions reads one tiny row per file.
"""

from __future__ import annotations

SCHEMA_VERSION = 2
"""Stamped into ``PRAGMA user_version``; a file with a larger value was written by a newer lash.

Version 2 has the tables of version 1; its node records may be zlib-compressed
(:func:`lash.blobs.compress_node_record`), which lash before version 2 cannot read, and new
files use ``auto_vacuum = INCREMENTAL``. A version-1 file is stamped 2 when opened.
"""

UPGRADABLE_VERSIONS = frozenset({1})
"""Older versions opened as they are and stamped :data:`SCHEMA_VERSION` (the same tables)."""

SESSION = "session"
BLOB_STORE = "blobs"

_IDENTITY = """
CREATE TABLE lash_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kind TEXT NOT NULL,
    session_id TEXT
);
"""

_BLOBS = """
CREATE TABLE blobs (
    seq INTEGER PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    envelope BLOB NOT NULL,
    stored_at REAL NOT NULL
);
"""

_SESSION = """
CREATE TABLE nodes (
    seq INTEGER PRIMARY KEY,          -- insertion order
    node_id TEXT NOT NULL UNIQUE,
    parent_id TEXT,
    tombstoned INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
CREATE INDEX nodes_tombstoned ON nodes (seq) WHERE tombstoned = 1;
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (source, model)
);
CREATE TABLE head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    data BLOB NOT NULL
);
"""

DDL: dict[str, str] = {SESSION: _IDENTITY + _BLOBS + _SESSION, BLOB_STORE: _IDENTITY + _BLOBS}
"""The statements that create each kind of file."""
