"""Every store the benchmark compares, behind one small interface.

Each system persists the same DESIGN §7 turns through its own public API and its own
durability settings brought to the same level (SQLite in WAL mode with
``synchronous=NORMAL``). What each one stores that the others do not is written in
``RESULTS.md`` (see :data:`NOTES`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import lash
from benchmarks.postgres_server import fresh_schema, run_dsn, schema_bytes
from benchmarks.workload import Turn
from lash import codec
from lash.graph import new_node_id
from lash.model import Node

THREAD = "bench"


class System(Protocol):
    """One store under test, living in ``directory``."""

    def turn(self, turn: Turn) -> float:
        """Persist one turn; returns the seconds its commit/put took."""
        ...

    def close(self) -> None:
        """Release everything, so the directory holds only what is durable."""
        ...

    def resume(self) -> None:
        """Open the store anew and load what an agent needs to continue."""
        ...


def message_nodes(turn: Turn, parent: str | None) -> list[Node]:
    """The turn's user and assistant messages as lash nodes (ids fresh, chained)."""
    nodes = []
    for role, content in (("user", turn.user), ("assistant", turn.assistant)):
        node = Node(new_node_id(), parent, "message", {"role": role, "content": content}, time.time())
        nodes.append(node)
        parent = node.node_id
    return nodes


class SnapshotPlugin:
    """An in-process lash plugin whose snapshot changes when the workload says so."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return self.state


class LashSystem:
    """lash through ``lash.open`` and ``Session.commit``, default config but the store."""

    def __init__(self, store: dict[str, Any]) -> None:
        self.config = {"store": store}
        self.plugin = SnapshotPlugin()
        self.handle = lash.open(self.config, plugins=[self.plugin])
        self.session = self.handle.session(THREAD)

    def turn(self, turn: Turn) -> float:
        session = self.session
        session.append_message("user", turn.user)
        session.append_message("assistant", turn.assistant)
        session.record_usage("agent", "model", lash.TokenUsage(input_tokens=turn.usage[0], output_tokens=turn.usage[1]))
        session.set_execution_state(turn.execution_state)
        if turn.tools is not None:
            session.tools.replace(turn.tools)
            self.plugin.state = turn.plugin_state
        start = time.perf_counter()
        session.commit()
        return time.perf_counter() - start

    def close(self) -> None:
        self.session.close()
        if self.config["store"]["backend"] != "memory":  # memory keeps its data only while open
            self.handle.close()

    def resume(self) -> None:
        if self.config["store"]["backend"] == "memory":
            session = self.handle.session(THREAD, residency="active_path")
        else:
            handle = lash.open(self.config, plugins=[SnapshotPlugin()])
            session = handle.session(THREAD, residency="active_path")
            handle.close()
        assert session.messages()


def lash_sqlite(profile: str) -> Callable[[Path], System]:
    def build(directory: Path) -> System:
        return LashSystem({"backend": "sqlite", "options": {"path": str(directory), "blob_profile": profile}})

    return build


def lash_memory(directory: Path) -> System:
    return LashSystem({"backend": "memory"})


_FLOOR_PATH = """
WITH RECURSIVE path (node_id, parent_id, data) AS (
    SELECT node_id, parent_id, data FROM nodes WHERE node_id = ?
    UNION ALL
    SELECT n.node_id, n.parent_id, n.data FROM nodes AS n JOIN path AS p ON n.node_id = p.parent_id
)
SELECT data FROM path
"""


class Floor:
    """Plain sqlite3: the same bytes lash is handed, pre-encoded, one transaction per turn.

    Rows: the two message nodes (encoded as lash encodes them), the execution state, the
    tool catalogue and plugin state when they change, and a one-row head. The least any
    store of the same data must write, with no checks and no reads.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "floor.db"
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE nodes (seq INTEGER PRIMARY KEY, node_id TEXT UNIQUE, parent_id TEXT, data BLOB)"
        )
        self.conn.execute("CREATE TABLE blobs (seq INTEGER PRIMARY KEY, data BLOB)")
        self.conn.execute("CREATE TABLE head (id INTEGER PRIMARY KEY, data BLOB)")
        self.leaf: str | None = None
        self.count = 0

    def turn(self, turn: Turn) -> float:
        nodes = [(n.node_id, n.parent_id, codec.encode(n)) for n in message_nodes(turn, self.leaf)]
        blobs = [(turn.execution_state,)]
        if turn.tools is not None:
            blobs += [(codec.pack(turn.tools),), (codec.pack(turn.plugin_state),)]
        conn = self.conn
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO nodes (node_id, parent_id, data) VALUES (?, ?, ?)", nodes)
        conn.executemany("INSERT INTO blobs (data) VALUES (?)", blobs)
        conn.execute("INSERT OR REPLACE INTO head (id, data) VALUES (1, ?)", (nodes[-1][0].encode(),))
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        self.leaf = nodes[-1][0]
        self.count += len(nodes)
        return elapsed

    def close(self) -> None:
        self.conn.close()

    def resume(self) -> None:
        conn = sqlite3.connect(self.path)
        rows = conn.execute(_FLOOR_PATH, (self.leaf,)).fetchall()
        conn.close()
        assert len(rows) == self.count


class LangGraphSqlite:
    """LangGraph's ``SqliteSaver``: a checkpoint per turn holding the growing message list.

    A LangGraph agent keeps its messages in a channel with the ``add_messages`` reducer, so
    every checkpoint carries the whole list; the tool catalogue, plugin state and execution
    state are channels too, bumped when they change, as ``StateGraph`` would.
    """

    def __init__(self, directory: Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.path = directory / "langgraph.db"
        self.saver = SqliteSaver(self._connect())
        self.saver.setup()
        self.config: dict[str, Any] = {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}
        self.values: dict[str, Any] = {"messages": []}
        self.versions: dict[str, str] = {}

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def turn(self, turn: Turn) -> float:
        from langgraph.checkpoint.base import empty_checkpoint

        messages = [{"role": "user", "content": turn.user}, {"role": "assistant", "content": turn.assistant}]
        changed: dict[str, Any] = {"messages": messages}
        self.values["messages"] = [*self.values["messages"], *changed["messages"]]
        self.values["execution_state"] = changed["execution_state"] = turn.execution_state
        if turn.tools is not None:
            self.values["tools"] = changed["tools"] = turn.tools
            self.values["plugin_state"] = changed["plugin_state"] = turn.plugin_state
        new_versions = {ch: self.saver.get_next_version(self.versions.get(ch), None) for ch in changed}
        self.versions.update(new_versions)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = dict(self.values)
        checkpoint["channel_versions"] = dict(self.versions)
        metadata = {"source": "loop", "step": turn.index, "usage": list(turn.usage)}
        start = time.perf_counter()
        self.config = self.saver.put(self.config, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
        return time.perf_counter() - start

    def close(self) -> None:
        self.saver.conn.close()

    def resume(self) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = self._connect()
        latest = SqliteSaver(conn).get_tuple({"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}})
        conn.close()
        assert latest is not None and latest.checkpoint["channel_values"]["messages"]


class LangGraphLashSaver(LangGraphSqlite):
    """lash-langgraph's ``LashSaver`` on lash-sqlite: :class:`LangGraphSqlite`'s checkpoints (its ``turn``) in lash."""

    def __init__(self, directory: Path) -> None:
        from lash_langgraph import LashSaver

        self.lash_config = {"store": {"backend": "sqlite", "options": {"path": str(directory)}}}
        self.saver = LashSaver.from_config(self.lash_config)  # type: ignore[assignment]
        self.config = {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}
        self.values = {"messages": []}
        self.versions = {}

    def close(self) -> None:
        self.saver.close()

    def resume(self) -> None:
        from lash_langgraph import LashSaver

        with LashSaver.from_config(self.lash_config) as saver:
            latest = saver.get_tuple({"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}})
        assert latest is not None and latest.checkpoint["channel_values"]["messages"]


class LashPostgres(LashSystem):
    """lash on backend ``postgres``, in a fresh schema of this run's database."""

    def __init__(self, directory: Path) -> None:
        self.dsn, self.schema = run_dsn(), fresh_schema()
        super().__init__({"backend": "postgres", "options": {"dsn": self.dsn, "schema": self.schema}})

    def disk_bytes(self) -> int:
        return schema_bytes(self.dsn, self.schema)


class LangGraphPostgres(LangGraphSqlite):
    """LangGraph's ``PostgresSaver``: :class:`LangGraphSqlite`'s checkpoints (its ``turn``), in PostgreSQL.

    One connection as ``PostgresSaver.from_conn_string`` opens it, its tables in a fresh schema
    of this run's database.
    """

    def __init__(self, directory: Path) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self.dsn, self.schema = run_dsn(), fresh_schema()
        conn = self._connect()
        conn.execute(f"CREATE SCHEMA {self.schema}")
        self.saver = PostgresSaver(conn)  # type: ignore[assignment]
        self.saver.setup()
        self.config = {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}
        self.values = {"messages": []}
        self.versions = {}

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        options = f"-c search_path={self.schema}"  # a generated name: bench_ and hex digits
        return psycopg.connect(self.dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row, options=options)

    def resume(self) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        with self._connect() as conn:
            latest = PostgresSaver(conn).get_tuple({"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}})
        assert latest is not None and latest.checkpoint["channel_values"]["messages"]

    def disk_bytes(self) -> int:
        return schema_bytes(self.dsn, self.schema)


def _agents_session_class() -> type:
    from agents import SQLiteSession

    class NormalSyncSQLiteSession(SQLiteSession):
        """The SDK's session with ``synchronous=NORMAL``, the durability every system here gets."""

        @staticmethod
        def _configure_connection(conn: sqlite3.Connection) -> None:
            SQLiteSession._configure_connection(conn)
            conn.execute("PRAGMA synchronous = NORMAL")

    return NormalSyncSQLiteSession


class AgentsSqlite:
    """The OpenAI Agents SDK's ``SQLiteSession``: ``add_items`` of the turn's two messages."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "agents.db"
        self.cls = _agents_session_class()
        self.loop = asyncio.new_event_loop()
        self.session = self.cls(THREAD, self.path)

    def turn(self, turn: Turn) -> float:
        items = [{"role": "user", "content": turn.user}, {"role": "assistant", "content": turn.assistant}]
        start = time.perf_counter()
        self.loop.run_until_complete(self.session.add_items(items))
        return time.perf_counter() - start

    def close(self) -> None:
        self.session.close()

    def resume(self) -> None:
        session = self.cls(THREAD, self.path)
        items = self.loop.run_until_complete(session.get_items())
        session.close()
        assert items


class AgentsLashSession(AgentsSqlite):
    """lash-openai-agents' ``LashSession`` on lash-sqlite (``balanced``), with :class:`AgentsSqlite`'s turns."""

    def __init__(self, directory: Path) -> None:
        from lash_openai_agents import LashSession

        self.config = {"store": {"backend": "sqlite", "options": {"path": str(directory), "blob_profile": "balanced"}}}
        self.cls = LashSession
        self.loop = asyncio.new_event_loop()
        self.session = LashSession(THREAD, config=self.config)

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())

    def resume(self) -> None:
        async def open_and_read() -> list[Any]:
            async with self.cls(THREAD, config=self.config) as session:
                return await session.get_items()

        assert self.loop.run_until_complete(open_and_read())


SYSTEMS: dict[str, Callable[[Path], System]] = {
    "floor": Floor,
    "lash-sqlite": lash_sqlite("balanced"),
    "lash-sqlite-low_latency": lash_sqlite("low_latency"),
    "lash-sqlite-compact": lash_sqlite("compact"),
    "lash-memory": lash_memory,
    "langgraph-sqlite": LangGraphSqlite,
    "langgraph-lashsaver": LangGraphLashSaver,
    "agents-sqlite": AgentsSqlite,
    "agents-lashsession": AgentsLashSession,
    "lash-postgres": LashPostgres,
    "langgraph-postgres": LangGraphPostgres,
}
"""Every system by name; the first is the floor every ratio is taken against."""

POSTGRES_SYSTEMS = frozenset({"lash-postgres", "langgraph-postgres"})
"""The systems that need a PostgreSQL server (see :mod:`benchmarks.postgres_server`)."""

NOTES: dict[str, str] = {
    "floor": "the same node bytes lash stores plus execution state and changed snapshots as raw rows, "
    "and a head row; no reads, no checks, no ledger",
    "lash-sqlite": "lash-sqlite, blob profile `balanced` (the default): nodes appended (records ≥ 2 KiB "
    "zlib-compressed), snapshots deduplicated by content and compressed, the execution state stored as it is, "
    "usage ledger, agent frames, revision compare-and-swap; blobs of old turns collected every 100 commits "
    "(`[gc] auto_every_commits`) and their pages returned to the file system",
    "lash-sqlite-low_latency": "lash-sqlite, blob profile `low_latency` (never compresses)",
    "lash-sqlite-compact": "lash-sqlite, blob profile `compact` (compresses every blob ≥ 1 KiB and node records "
    "≥ 256 bytes)",
    "lash-memory": "lash-memory: the same commit path with nothing durable (no bytes on disk)",
    "langgraph-sqlite": "LangGraph `SqliteSaver.put`: one checkpoint row per turn holding every channel "
    "(the whole message list, tools, plugin and execution state); no usage ledger, no dedup",
    "langgraph-lashsaver": "lash-langgraph `LashSaver.put` on lash-sqlite: the checkpoints of "
    "langgraph-sqlite, each one lash node (one commit, revision compare-and-swap) holding the channels it "
    "changed: the message list as the two messages it added to the parent's (a delta, format 2), the "
    "execution state whole, tools/plugin state whole when they change and not at all otherwise; no usage "
    "ledger; resume opens the thread's session (every checkpoint node) and rebuilds the newest checkpoint's list",
    "agents-sqlite": "OpenAI Agents SDK `SQLiteSession.add_items`: the two messages only; no tool "
    "catalogue, plugin or execution state, no usage, no branches",
    "agents-lashsession": "lash-openai-agents `LashSession.add_items` on lash-sqlite (`balanced`): the two "
    "messages of agents-sqlite as two lash nodes in one commit (revision compare-and-swap, retried after a "
    "conflict), plus what `SQLiteSession` lacks: a branch marker at the root (branches, pops, per-turn usage "
    "live in the same graph), the adapter's format version in the plugin snapshot, agent frames; no tool "
    "catalogue or execution state (the SDK's session has none); resume opens lash, the session and "
    "`get_items()`",
    "lash-postgres": "lash-postgres (`balanced`), its own schema on a local PostgreSQL server over TCP "
    "(127.0.0.1); what lash-sqlite stores, plus a session row lock per commit. Durability: `fsync` and "
    "`synchronous_commit` on (PostgreSQL's defaults; the throwaway server is started with them), so each "
    "commit waits for a WAL flush, which SQLite with `synchronous=NORMAL` does not; disk is the schema's "
    "tables, indexes and TOAST; peak RSS is the client process only",
    "langgraph-postgres": "LangGraph `PostgresSaver.put` on the same server, durability and workload as "
    "lash-postgres: the checkpoints of langgraph-sqlite, each changed channel stored whole per version "
    "(the message list too), on one connection as `PostgresSaver.from_conn_string` opens it",
}
