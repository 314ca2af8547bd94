"""The lash plugin of this distribution: it keeps the adapter's format version in each SDK session.

Registered through the ``lash`` entry point ``openai_agents``. Before each commit of a session
a :class:`~lash_openai_agents.LashSession` works on (or one resumed with this plugin's
snapshot) lash stores ``{"format": FORMAT_VERSION}`` in the session's plugin snapshot; it is
unchanged from one commit to the next, so lash writes it once. On resume a newer format
raises :class:`~lash_openai_agents.errors.AdapterFormatError` before anything is read.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import lash
from lash.session import SessionBase
from lash_openai_agents.errors import AdapterFormatError

PLUGIN_NAME = "openai_agents"
"""The entry-point name: the key of this plugin's value in a session's plugin snapshot."""

FORMAT_VERSION = 1
"""How this adapter lays items, branches and usage out in a session (see the README)."""

_sdk_sessions: WeakKeyDictionary[SessionBase, int] = WeakKeyDictionary()


def adopt(session: SessionBase) -> None:
    """Mark ``session`` as an SDK session: its commits carry this adapter's format version."""
    _sdk_sessions[session] = FORMAT_VERSION


def check_format(session_id: str, snapshot: Any) -> None:
    """Refuse this plugin's ``snapshot`` of ``session_id`` if a newer adapter wrote it (None: not written yet)."""
    if snapshot is None:
        return
    found = snapshot.get("format") if isinstance(snapshot, dict) else None
    if type(found) is not int:
        raise lash.CorruptRecordError(
            f"lash-openai-agents state of session {session_id!r}", f"expected {{'format': int}}, got {snapshot!r:.80}"
        )
    if found > FORMAT_VERSION:
        raise AdapterFormatError(session_id, found, FORMAT_VERSION)


@lash.hookimpl
def lash_restore_session(session: SessionBase, snapshot: Any) -> None:
    check_format(session.session_id, snapshot)
    adopt(session)


@lash.hookimpl
def lash_snapshot_session(session: SessionBase) -> dict[str, int] | None:
    return {"format": _sdk_sessions[session]} if session in _sdk_sessions else None
