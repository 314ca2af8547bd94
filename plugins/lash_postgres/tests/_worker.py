"""What one host of a fleet does, run in its own OS process (``multiprocessing``) with its own pool.

:func:`contend`: wait until the epoch time ``start_at`` (so that every host contends), then
commit ``commits`` messages round-robin over ``sessions`` sessions, refreshing and retrying on
:class:`lash.HeadRevisionConflict`.

:func:`survive`: commit messages to a session of its own until told to stop, while the
server may restart, counting them in ``progress[index]``; after a :class:`lash.BackendError`
(the outcome of that commit is unknown), resume the session as committed and append the
message again only if it is missing.

Both return a summary; any other exception fails the process.
"""

from __future__ import annotations

import time
from collections.abc import MutableSequence
from typing import Protocol

import lash


class Flag(Protocol):
    def is_set(self) -> bool: ...


def contend(config: dict, name: str, commits: int, sessions: int, start_at: float) -> dict:
    done: list[dict] = []
    conflicts = 0
    with lash.open(config) as handle:
        opened = [handle.session(f"shared-{i}") for i in range(sessions)]
        time.sleep(max(0.0, start_at - time.time()))
        for i in range(commits):
            session = opened[i % sessions]
            node_id = session.append_message("user", f"{name}:{i}")
            while True:
                try:
                    result = session.commit()
                    break
                except lash.HeadRevisionConflict:
                    conflicts += 1
                    session.refresh()
            done.append({"session": session.session_id, "node": node_id, "revision": result.head_revision})
    return {"name": name, "commits": done, "conflicts": conflicts}


def _contains(session: lash.Session, text: str) -> bool:
    return any(node.body.get("content") == text for node in session.graph.nodes.values() if node.kind == "message")


def survive(config: dict, name: str, session_id: str, progress: MutableSequence[int], index: int, stop: Flag) -> dict:
    errors: list[str] = []
    commits = 0
    with lash.open(config) as handle:
        session = handle.session(session_id)
        while not stop.is_set():
            text = f"{name}:{commits}"
            session.append_message("user", text)
            while True:
                try:
                    session.commit()
                    break
                except lash.BackendError as exc:  # a commit cut off by the restart
                    errors.append(str(exc))
                    time.sleep(0.2)
                    session.close()  # its uncommitted state is unknown: start again from what is stored
                    session = _resume(handle, session_id)
                    if _contains(session, text):  # the commit landed; only its acknowledgement was lost
                        break
                    session.append_message("user", text)
            commits += 1
            progress[index] = commits
    return {"name": name, "errors": errors, "commits": commits}


def _resume(handle: lash.Lash, session_id: str) -> lash.Session:
    """The session as committed, retrying while the server is still coming back."""
    for _ in range(100):
        try:
            return handle.session(session_id)
        except lash.BackendError:
            time.sleep(0.2)
    return handle.session(session_id)
