"""Where a LangGraph thread lives in lash: one session per ``(thread_id, checkpoint_ns)``.

The root namespace of thread ``T`` is the session ``langgraph:T`` (readable in ``lash sessions``);
a subgraph namespace ``N`` is a child session ``langgraph-ns:<quoted T>/<quoted N>`` whose parent
is the thread's session, the way lash records sub-agents. Both forms decode back to
``(thread_id, checkpoint_ns)``, and no thread's session id can equal a namespace's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import attrs

from lash.errors import InvalidSessionId
from lash.store import check_session_id

THREAD_PREFIX = "langgraph:"
NAMESPACE_PREFIX = "langgraph-ns:"
_SAFE = ":|-_.~"  # kept as is by quote(); "/" and "%" are always escaped


@attrs.frozen
class Address:
    """One LangGraph checkpoint stream: a thread and a checkpoint namespace ("" is the root graph)."""

    thread_id: str
    checkpoint_ns: str = ""

    @property
    def session_id(self) -> str:
        if not self.checkpoint_ns:
            return THREAD_PREFIX + self.thread_id
        return f"{NAMESPACE_PREFIX}{quote(self.thread_id, safe=_SAFE)}/{quote(self.checkpoint_ns, safe=_SAFE)}"

    @property
    def root(self) -> Address:
        """The thread's root-namespace stream (its session is the parent of every namespace's)."""
        return Address(self.thread_id)

    def checked(self) -> Address:
        """This address, or :class:`~lash.InvalidSessionId` naming the thread when lash cannot store it."""
        try:
            check_session_id(self.session_id)
        except InvalidSessionId as exc:
            raise InvalidSessionId(
                self.thread_id, f"LangGraph thread id cannot be stored as lash session {self.session_id!r}: {exc}"
            ) from exc
        return self


def address_of(config: Any) -> Address:
    """The address a LangGraph ``RunnableConfig`` points at (thread id required, namespace default "")."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise InvalidSessionId(None, 'LangGraph config has no configurable["thread_id"]')
    if not isinstance(thread_id, str | int) or isinstance(thread_id, bool):
        raise InvalidSessionId(thread_id, f"LangGraph thread id must be a str (or int), not {type(thread_id).__name__}")
    if thread_id == "":
        raise InvalidSessionId(thread_id, "LangGraph thread id must not be empty")
    namespace = configurable.get("checkpoint_ns") or ""
    if not isinstance(namespace, str):
        raise InvalidSessionId(namespace, f"checkpoint_ns must be a str, not {type(namespace).__name__}")
    return Address(str(thread_id), namespace).checked()


def thread_address(thread_id: Any) -> Address:
    """The root-namespace address of ``thread_id`` (as passed to ``delete_thread`` and friends)."""
    return address_of({"configurable": {"thread_id": thread_id}})


def parse_session_id(session_id: str) -> Address | None:
    """The address a lash session id stands for, or None for sessions that are not LangGraph's."""
    if session_id.startswith(THREAD_PREFIX):
        return Address(session_id[len(THREAD_PREFIX) :])
    if session_id.startswith(NAMESPACE_PREFIX):
        thread, sep, namespace = session_id[len(NAMESPACE_PREFIX) :].partition("/")
        if sep and namespace:
            return Address(unquote(thread), unquote(namespace))
    return None
