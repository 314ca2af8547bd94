"""The backend-wide statements (sessions, listing, heads, statistics) as query programs.

Shared by :class:`~lash_postgres.backend.PostgresBackend` (run on the sync pool) and
:class:`~lash_postgres.aio.AsyncPostgresBackend` (driven on the async pool), so the two
read the same rows the same way.
"""

from __future__ import annotations

from lash import codec
from lash.model import Head, SessionInfo, SessionMeta
from lash.store import SessionSummary, StoredHead, session_info
from lash_postgres.database import Program, Query
from lash_postgres.storage import Statements


def open_session(sql: Statements, session_id: str, create: bool) -> Program[bool]:
    """Create the session row (``create``) or look it up; whether the session exists now."""
    rows = yield Query(
        sql.create_session if create else sql.session_exists, (session_id,), binary=False, fetch=not create
    )
    return create or bool(rows)


def session_ids(sql: Statements) -> Program[list[str]]:
    return [row[0] for row in (yield Query(sql.session_ids, binary=False))]


def delete_session(sql: Statements, session_id: str) -> Program[bool]:
    return bool((yield Query(sql.delete_session, (session_id,), binary=False)))


def analyze(sql: Statements) -> Program[None]:
    yield Query(sql.analyze, fetch=False, binary=False)


def listing(sql: Statements) -> Program[list[SessionInfo]]:
    """Every session with its counts, read from the head summaries in one query (no node scans)."""
    infos = []
    for session_id, head_data, meta_data in (yield Query(sql.listing)):
        stored = None if head_data is None else codec.decode(head_data, StoredHead, f"head of {session_id!r}")
        if stored is not None and stored.deleted_at is not None:  # being deleted right now
            continue
        meta = None if meta_data is None else codec.decode(meta_data, SessionMeta, f"meta of {session_id!r}")
        summary = stored.summary if stored else SessionSummary()
        infos.append(session_info(session_id, meta, stored.head if stored else None, summary))
    return infos


def live_heads(sql: Statements) -> Program[list[Head]]:
    """Every live head, in one query: the GC roots of the shared blob table."""
    heads = []
    for session_id, data in (yield Query(sql.all_heads)):
        stored = codec.decode(data, StoredHead, f"head of {session_id!r}")
        if stored.deleted_at is None:
            heads.append(stored.head)
    return heads
