"""``LashSession``: the OpenAI Agents SDK's ``Session`` protocol on a lash session.

Each SDK item is one lash ``message`` node (:mod:`lash_openai_agents.items`); branches, pops
and per-turn usage are small plugin nodes in the same graph (:mod:`lash_openai_agents.history`).
Every mutation is one lash commit guarded by the head revision: on a conflict with another
writer (or a session another process deleted) the session drops what it recorded, reloads
the head and redoes the change, up to ``max_attempts`` times. A mutation that fails leaves
nothing behind, and one whose caller is cancelled still finishes before the cancellation
is raised (the SDK's ``_await_mutation``, as in its own sessions).

All storage calls go through ``lash.aio``: backends with a native async face are awaited,
the others run in the handle's worker pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from agents.items import TResponseInputItem
from agents.memory.session import OpenAIResponsesCompactionArgs
from agents.memory.session import _await_mutation as await_mutation  # the SDK sessions' own cancellation rule
from agents.memory.session_settings import SessionSettings, coerce_session_settings, resolve_session_limit
from agents.result import RunResultBase

import lash
import lash.aio
from lash.store import check_session_id
from lash_openai_agents import plugin, usage
from lash_openai_agents.errors import BranchError
from lash_openai_agents.history import BRANCH, MAIN, POP, USAGE, History
from lash_openai_agents.items import to_bodies, to_item

T = TypeVar("T")
ConfigSource = lash.LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None
RETRYABLE = (lash.HeadRevisionConflict, lash.SessionDeletedError)


class LashSession:
    """An SDK ``Session`` whose history lives in lash, on whatever backend lash is configured with.

    ``LashSession(session_id)`` opens lash on first use with the usual config lookup
    (``lash.toml``, ``[tool.lash]``, or SQLite under ``.lash/``) and closes it with
    :meth:`close`; ``config=`` names another config; ``LashSession(session_id, handle)`` uses
    a ``lash.aio`` handle you opened and close. ``auto_compact=True`` lets the ``Runner``'s
    call after each turn run lash's configured compaction strategy (see :meth:`run_compaction`).
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        lash_handle: lash.aio.Lash | None = None,
        *,
        config: ConfigSource = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        auto_compact: bool = False,
        max_attempts: int = 8,
    ) -> None:
        self.session_id = check_session_id(session_id)
        if lash_handle is not None and not isinstance(lash_handle, lash.aio.Lash):
            raise TypeError(
                "LashSession needs a lash.aio handle (`async with lash.aio.open(...) as handle`) or none at all, "
                f"not {type(lash_handle).__name__}"
            )
        if lash_handle is not None and config is not None:
            raise lash.LashError("LashSession: pass a lash handle or a config, not both")
        if type(max_attempts) is not int or max_attempts < 1:
            raise lash.LashError(f"LashSession: max_attempts must be a positive int, not {max_attempts!r}")
        self.session_settings = (
            coerce_session_settings(session_settings) if session_settings is not None else SessionSettings()
        )
        self.auto_compact = auto_compact
        self.max_attempts = max_attempts
        self._handle = lash_handle
        self._owns_handle = lash_handle is None
        self._config = config
        self._session: lash.aio.Session | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<LashSession {self.session_id!r}>"

    async def __aenter__(self) -> LashSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def lash_session(self) -> lash.aio.Session | None:
        """The lash session underneath (None before the first call), for lash-level reads such as ``usage_report()``."""
        return self._session

    # -- the SDK's Session protocol ------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The items the model sees (the current compaction frame of the current branch), oldest first.

        ``limit`` (else ``session_settings.limit``) keeps the latest N, as the SDK's sessions do.
        """
        session_limit = resolve_session_limit(limit, self.session_settings)
        bodies = await self._read(lambda session: session.messages())
        if session_limit is not None and session_limit >= 0:
            bodies = bodies[max(0, len(bodies) - session_limit) :] if session_limit else []
        return [to_item(body) for body in bodies]  # type: ignore[misc]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` to the current branch in one commit; an item that cannot be stored stores nothing."""
        self._check_open()
        bodies = to_bodies(items)
        if not bodies:
            return

        async def append(session: lash.aio.Session) -> None:
            _start(session)
            for body in bodies:
                extra = {key: value for key, value in body.items() if key not in ("role", "content")}
                session.append_message(body["role"], body["content"], **extra)
            await session.commit()

        await self._write(append)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item of the current frame (None when there is none).

        The branch moves back to the node before it, and a pop marker records the leaf it left;
        the item stays in lash's history (``lash show --full``) but no longer in any branch.
        """

        async def pop(session: lash.aio.Session) -> TResponseInputItem | None:
            history = History(session.graph, session.frames)
            path = history.path()
            starts = [i for i, node in enumerate(path) if node.node_id == session.current_frame.start_node_id]
            item_nodes = [node for node in path[starts[0] if starts else 0 :] if node.kind == "message"]
            if not item_nodes:
                return None
            newest = item_nodes[-1]
            if newest.parent_id is None:
                raise lash.LashError(
                    f"cannot pop the first node of session {self.session_id!r}: LashSession did not start it"
                )
            branch = history.current_branch()
            left = session.graph.leaf_node_id
            session.checkout(newest.parent_id)
            session.append_plugin(POP, {"branch": branch, "abandoned": left})
            await session.commit()
            return to_item(newest.body)  # type: ignore[return-value]

        return await self._write(pop)

    async def clear_session(self) -> None:
        """Remove every item and branch (one commit). The lash usage ledger keeps the tokens already spent."""

        async def clear(session: lash.aio.Session) -> None:
            session.reset()
            await session.commit()

        await self._write(clear)

    async def run_compaction(self, args: OpenAIResponsesCompactionArgs | None = None) -> None:
        """Compact through lash: its configured strategy seeds a new frame, and ``get_items()`` returns that frame.

        The ``Runner`` calls this after every turn with ``{"response_id", "force": False}``;
        that call compacts only with ``auto_compact=True`` (then the strategy decides, e.g.
        ``keep-recent`` once the frame exceeds ``keep_last``). A call of your own without
        arguments, or with ``force=True``, always runs the strategy. The full history stays
        in the lash graph.
        """
        if not (self.auto_compact or args is None or args.get("force")):
            return

        async def compact(session: lash.aio.Session) -> None:
            await session.compact()

        await self._write(compact)

    # -- what AdvancedSQLiteSession offers, on lash branches and the usage ledger ----------

    async def create_branch_from_turn(self, turn_number: int, branch_name: str | None = None) -> str:
        """Start a branch just before user turn ``turn_number`` of the current branch, and switch to it.

        The new branch holds every item before that turn; the old one stays as it was.
        Returns the branch name (``branch_from_turn_<N>_<unix time>`` unless given; names are
        never reused). Raises :class:`BranchError` (a ``ValueError``) for a turn without a user
        message or a name already used.
        """
        if branch_name is not None and (not isinstance(branch_name, str) or not branch_name.strip()):
            raise BranchError("Branch name cannot be empty")

        async def branch(session: lash.aio.Session) -> str:
            history = History(session.graph, session.frames)
            turn = next((t for t in history.turns(history.path()) if t.number == turn_number), None)
            if turn is None:
                raise BranchError(
                    f"Turn {turn_number} does not contain a user message in branch {history.current_branch()!r}"
                )
            used = history.names_used() | {MAIN}
            name = branch_name or _unused_name(f"branch_from_turn_{turn_number}_{int(time.time())}", used)
            if name in used:
                raise BranchError(f"Branch ID {name!r} has already been used. Choose a new branch ID.")
            if turn.node.parent_id is None:
                raise BranchError(f"cannot branch before the first node of session {self.session_id!r}")
            session.checkout(turn.node.parent_id)
            session.append_plugin(BRANCH, {"name": name})
            await session.commit()
            return name

        return await self._write(branch)

    async def switch_to_branch(self, branch_id: str) -> None:
        """Make ``branch_id`` current (one commit moving the head); :class:`BranchError` if there is none."""

        async def switch(session: lash.aio.Session) -> None:
            tips = History(session.graph, session.frames).branches()
            if branch_id not in tips:
                raise BranchError(f"Branch {branch_id!r} does not exist (branches: {', '.join(tips) or 'none'})")
            if tips[branch_id].leaf_node_id != session.graph.leaf_node_id:
                session.checkout(tips[branch_id].leaf_node_id)
                await session.commit()

        await self._write(switch)

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every branch, oldest first: ``branch_id``, ``message_count``, ``user_turns``, ``is_current``, ``created_at``.

        A branch is a leaf of the lash graph that ``pop_item`` did not leave behind.
        """

        def describe(session: lash.aio.Session) -> list[dict[str, Any]]:
            history = History(session.graph, session.frames)
            current = history.current_branch()
            out = []
            for branch in history.branches().values():
                path = history.path(branch.leaf_node_id)
                out.append(
                    {
                        "branch_id": branch.name,
                        "message_count": len(history.items(path)),
                        "user_turns": len(history.turns(path)),
                        "is_current": branch.name == current,
                        "created_at": _timestamp(branch.created_at),
                    }
                )
            return out

        return await self._read(describe)

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of a branch (default: the current one), to choose where to branch from."""

        def turns(session: lash.aio.Session) -> list[dict[str, Any]]:
            history = History(session.graph, session.frames)
            out = []
            for turn in history.turns(_branch_path(history, branch_id)):
                content = to_item(turn.node.body).get("content", "")
                preview = content if isinstance(content, str) else repr(content)
                out.append(
                    {
                        "turn": turn.number,
                        "content": preview if len(preview) <= 100 else preview[:100] + "...",
                        "full_content": content,
                        "timestamp": _timestamp(turn.node.created_at),
                        "can_branch": True,
                    }
                )
            return out

        return await self._read(turns)

    async def store_run_usage(self, result: RunResultBase, *, model: str | None = None) -> None:
        """Record a run's usage: in the lash ledger (source = agent name, model = model name) and for its turn.

        ``model`` overrides the model name when the agent's is not the one that ran (a
        ``RunConfig(model=...)``). Unlike the SDK's sessions, a failure raises.
        """
        run = usage.run_usage(result, model)
        if run is None:
            return

        async def record(session: lash.aio.Session) -> None:
            _start(session)
            session.record_usage(run.agent, run.model, run.tokens)
            session.append_plugin(USAGE, run.record)
            await session.commit()

        await self._write(record)

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """Usage summed over every branch (or one): requests, tokens, and ``total_turns``; None without any."""

        def total(session: lash.aio.Session) -> dict[str, int] | None:
            history = History(session.graph, session.frames)
            if branch_id is None:
                paths = [history.path(branch.leaf_node_id) for branch in history.branches().values()]
            else:
                paths = [_branch_path(history, branch_id)]
            records = {r.node.node_id: r for path in paths for r in history.usage_records(path)}
            if not records:
                return None
            summed = usage.total(r.node.body for r in records.values())
            turns = {r.turn.node.node_id if r.turn else None for r in records.values()}
            return {**{key: summed[key] for key in usage.COUNTS}, "total_turns": len(turns)}

        return await self._read(total)

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Usage of one turn (``{}`` if none), or of every turn with usage, of a branch (default: current).

        Each run stored for a turn adds to it (the SDK's own session keeps only the last run).
        """

        def per_turn(session: lash.aio.Session) -> list[dict[str, Any]] | dict[str, Any]:
            history = History(session.graph, session.frames)
            by_turn: dict[int, list[dict[str, Any]]] = {}
            for record in history.usage_records(_branch_path(history, branch_id)):
                by_turn.setdefault(record.turn_number, []).append(record.node.body)
            if user_turn_number is not None:
                return usage.total(by_turn[user_turn_number]) if user_turn_number in by_turn else {}
            return [{"user_turn_number": n, **usage.total(records)} for n, records in sorted(by_turn.items())]

        return await self._read(per_turn)

    # -- lifecycle -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the lash session (and the lash handle, if this session opened it)."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._discard()
            if self._owns_handle and self._handle is not None:
                handle, self._handle = self._handle, None
                await handle.close()

    # -- one place for every storage call --------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise lash.SessionClosedError(f"LashSession {self.session_id!r} is closed")

    async def _session_now(self) -> lash.aio.Session:
        """The lash session at the committed head (opened, or refreshed when another writer moved it)."""
        if self._handle is None:
            self._handle = await lash.aio.open(self._config)
        if self._session is None:
            if not self._handle.plugin_manager.pm.has_plugin(plugin.PLUGIN_NAME):
                raise lash.PluginError(
                    f"lash plugin {plugin.PLUGIN_NAME!r} of lash-openai-agents is not loaded (is it in "
                    "[plugins] disable?); LashSession needs it to record its format version"
                )
            self._session = await self._handle.session(self.session_id)
        else:
            await self._session.refresh()
        snapshot = self._session.plugin_snapshot
        plugin.check_format(self.session_id, snapshot.entries.get(plugin.PLUGIN_NAME) if snapshot else None)
        plugin.adopt(self._session)
        return self._session

    async def _discard(self) -> None:
        """Forget the lash session and whatever it recorded but did not commit; the next call reloads it."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _read(self, read: Callable[[lash.aio.Session], T]) -> T:
        self._check_open()
        async with self._lock:
            return read(await self._session_now())

    async def _write(self, change: Callable[[lash.aio.Session], Awaitable[T]]) -> T:
        """Run ``change`` (which records and commits) on the current head; redo it after a conflict."""
        self._check_open()

        async def attempts() -> T:
            async with self._lock:
                for attempt in range(1, self.max_attempts + 1):
                    session = await self._session_now()
                    try:
                        return await change(session)
                    except RETRYABLE:
                        await self._discard()
                        if attempt == self.max_attempts:
                            raise
                    except BaseException:
                        await self._discard()
                        raise
                raise AssertionError("unreachable")  # pragma: no cover

        return await await_mutation(attempts())


def _start(session: lash.aio.Session) -> None:
    """Root an empty session at the marker of branch ``main`` (branching from turn 1 needs a node before it)."""
    if not session.graph.nodes:
        session.append_plugin(BRANCH, {"name": MAIN})


def _branch_path(history: History, branch_id: str | None) -> list[lash.Node]:
    if branch_id is None:
        return history.path()
    tips = history.branches()
    return history.path(tips[branch_id].leaf_node_id) if branch_id in tips else []


def _unused_name(base: str, used: set[str]) -> str:
    name, suffix = base, 1
    while name in used:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _timestamp(seconds: float) -> str:
    """SQLite's ``CURRENT_TIMESTAMP`` format (UTC), which the SDK's session returns."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
