"""Pools of psycopg connections and the transactions lash runs on them, sync and async.

Connections are autocommit; a lash transaction is an explicit ``BEGIN`` … ``COMMIT``:

* a *write* transaction is ``READ COMMITTED`` and runs in pipeline mode, so its opening
  statement (which takes the session's write lock) travels with the ``BEGIN``, and the
  writes a commit queues travel together;
* a *read* transaction is ``REPEATABLE READ READ ONLY``, so the head, the nodes and the
  ledger it reads belong to one snapshot.

A connection the server dropped (a restart, a failover, an idle timeout) is noticed at
that first round trip, before anything was done, and replaced by another one from the pool;
an error later in a transaction is reported, never retried behind the caller's back.
Blob operations called while a transaction is open (a commit writing its snapshots) join
it, so they commit or roll back with it: the thread's transaction for :class:`Database`,
the task's (a context variable) for :class:`AsyncDatabase`.

Every statement lash sends is a *query program* (:data:`Program`): a generator that yields
:class:`Query` records and receives their rows. :func:`run_program` answers it on a
``psycopg.Connection``, :func:`drive_program` on a ``psycopg.AsyncConnection``, so the sync
and the async backend share every statement and every decision, and differ only in the awaits.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, AsyncExitStack, ExitStack, asynccontextmanager, contextmanager, suppress
from typing import Any, TypeVar

import attrs
import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from lash.errors import BackendError, LashError, SessionClosedError
from lash_postgres.errors import ConnectionTarget, translating

T = TypeVar("T")

BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@attrs.frozen
class Query:
    """One statement of a program; ``fetch=False`` queues it without waiting for rows (pipeline mode)."""

    statement: str
    params: Sequence[object] | Mapping[str, object] | None = None
    fetch: bool = True
    binary: bool = True


Program = Generator[Query, "list[tuple[Any, ...]] | None", T]
"""Statements and the decisions between them: yields :class:`Query`, receives its rows, returns ``T``."""


def run_program(program: Program[T], conn: psycopg.Connection) -> T:
    """Run ``program``'s queries on ``conn``."""
    rows: list[tuple[Any, ...]] | None = None
    while True:
        try:
            query = program.send(rows)
        except StopIteration as done:
            return done.value
        cursor = conn.execute(query.statement, query.params, binary=query.binary)
        rows = cursor.fetchall() if query.fetch else None


async def drive_program(program: Program[T], conn: psycopg.AsyncConnection) -> T:
    """Run ``program``'s queries on ``conn``, awaiting each."""
    rows: list[tuple[Any, ...]] | None = None
    while True:
        try:
            query = program.send(rows)
        except StopIteration as done:
            return done.value
        cursor = await conn.execute(query.statement, query.params, binary=query.binary)
        rows = await cursor.fetchall() if query.fetch else None


def configure_statement(statement_timeout: float) -> Query:
    """Per new connection: the statement timeout (milliseconds, 0 = none)."""
    return Query("SELECT set_config('statement_timeout', %s, false)", (str(round(statement_timeout * 1000)),))


class PoolPolicy:
    """What both pools decide the same way: errors, retries, timeouts."""

    def __init__(
        self,
        target: ConnectionTarget,
        *,
        pool_min: int,
        pool_max: int,
        connect_timeout: float,
        statement_timeout: float,
    ) -> None:
        self.target = target
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self.connection_options = {"autocommit": True, "connect_timeout": max(2, round(connect_timeout))}
        self._setup()

    def _setup(self) -> None:
        """Create the pool (subclasses)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.target.display}>"

    def pool_options(self, name: str) -> dict[str, Any]:
        """The keyword arguments both pool classes take alike (closed until opened)."""
        return {
            "conninfo": self.target.conninfo,
            "min_size": self.pool_min,
            "max_size": self.pool_max,
            "kwargs": self.connection_options,
            "configure": self._configure,
            "timeout": self.connect_timeout,
            "name": name,
            "open": False,
        }

    def translating(self, action: str) -> AbstractContextManager[None]:
        """Turn psycopg errors raised in the block into lash errors naming ``action``."""
        return translating(self.target, action, self.statement_timeout)

    def pool_error(self, exc: Exception, action: str) -> LashError:
        """The lash error for a pool that is closed or has no connection to give."""
        if isinstance(exc, PoolClosed):
            return SessionClosedError(f"the postgres backend at {self.target.display} is closed")
        return BackendError(
            f"PostgreSQL at {self.target.display}: no connection for {action} within {self.connect_timeout}s "
            f"(server unreachable, or all {self.pool_max} pooled connections busy; raise options.pool_max)"
        )

    def retryable(self, exc: BaseException, conn: psycopg.BaseConnection[Any], attempt: int) -> bool:
        """Whether ``exc`` only says the server had dropped ``conn``, and another try is left.

        There are enough tries to skip every dead connection the pool may still hold.
        """
        return isinstance(exc, psycopg.OperationalError) and conn.broken and attempt < self.pool_max

    def nested(self, action: str) -> BackendError:
        return BackendError(f"{action}: a lash transaction is already open here")


class Database(PoolPolicy):
    """The pool of one backend, shared by its sessions and its blob table."""

    def _setup(self) -> None:
        self._local = threading.local()
        self._pipeline = psycopg.Pipeline.is_supported()
        self.pool = ConnectionPool(**self.pool_options("lash-postgres"))
        self.pool.open(wait=False)

    def _configure(self, conn: psycopg.Connection) -> None:
        run_program(_single(configure_statement(self.statement_timeout)), conn)

    def _getconn(self, action: str) -> psycopg.Connection:
        try:
            return self.pool.getconn()
        except (PoolClosed, PoolTimeout) as exc:
            raise self.pool_error(exc, action) from exc

    @contextmanager
    def transaction(
        self, *, write: bool, opening: Callable[[], Program[T]], action: str
    ) -> Iterator[tuple[psycopg.Connection, T]]:
        """A transaction; ``opening()`` runs right after ``BEGIN`` (same round trip if writing), result yielded."""
        if getattr(self._local, "conn", None) is not None:
            raise self.nested(action)
        conn, stack, opened = self._begin(write, opening, action)
        self._local.conn = conn
        try:
            with self.translating(action):
                try:
                    yield conn, opened
                    conn.execute("COMMIT")
                    stack.close()  # leaves pipeline mode: sends what is queued and raises what failed
                except BaseException:
                    _close_quietly(stack)
                    _rollback(conn)
                    raise
        finally:
            self._local.conn = None
            self.pool.putconn(conn)

    def _begin(
        self, write: bool, opening: Callable[[], Program[T]], action: str
    ) -> tuple[psycopg.Connection, ExitStack, T]:
        """A connection inside ``BEGIN`` with ``opening`` done, skipping connections the server dropped."""
        attempt = 0
        while True:
            conn = self._getconn(action)
            stack = ExitStack()
            try:
                if write and self._pipeline:
                    stack.enter_context(conn.pipeline())
                conn.execute(BEGIN_WRITE if write else BEGIN_READ)
                return conn, stack, run_program(opening(), conn)
            except BaseException as exc:
                _close_quietly(stack)
                _rollback(conn)
                self.pool.putconn(conn)
                if self.retryable(exc, conn, attempt):
                    attempt += 1
                    continue
                if isinstance(exc, psycopg.Error):
                    with self.translating(action):
                        raise
                raise

    def run(self, program: Callable[[], Program[T]], *, action: str) -> T:
        """``program()``: in this thread's open transaction, else alone on a pooled autocommit connection.

        The program must be idempotent: on a connection the server dropped it is run again on another.
        """
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            with self.translating(action):
                return run_program(program(), joined)
        attempt = 0
        while True:
            conn = self._getconn(action)
            try:
                with self.translating(action):
                    try:
                        return run_program(program(), conn)
                    except psycopg.OperationalError as exc:
                        if not self.retryable(exc, conn, attempt):
                            raise
                attempt += 1
            finally:
                self.pool.putconn(conn)

    def close(self) -> None:
        self.pool.close()


class AsyncDatabase(PoolPolicy):
    """:class:`Database` over psycopg's ``AsyncConnectionPool``, for one event loop.

    The pool opens on first use (it needs the running loop) and never blocks the loop:
    connecting, waiting for a connection and every statement are awaited.
    """

    def _setup(self) -> None:
        self._current: contextvars.ContextVar[psycopg.AsyncConnection | None] = contextvars.ContextVar(
            "lash_postgres_transaction", default=None
        )
        self._pipeline = psycopg.AsyncPipeline.is_supported()
        self._opened = False
        self.pool = AsyncConnectionPool(**self.pool_options("lash-postgres-async"))

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        await drive_program(_single(configure_statement(self.statement_timeout)), conn)

    async def _getconn(self, action: str) -> psycopg.AsyncConnection:
        try:
            if not self._opened:
                self._opened = True
                await self.pool.open(wait=False)
            return await self.pool.getconn()
        except (PoolClosed, PoolTimeout) as exc:
            raise self.pool_error(exc, action) from exc

    @asynccontextmanager
    async def transaction(
        self, *, write: bool, opening: Callable[[], Program[T]], action: str
    ) -> AsyncIterator[tuple[psycopg.AsyncConnection, T]]:
        """:meth:`Database.transaction` with awaits; a cancellation inside it rolls back."""
        if self._current.get() is not None:
            raise self.nested(action)
        conn, stack, opened = await self._begin(write, opening, action)
        token = self._current.set(conn)
        try:
            with self.translating(action):
                try:
                    yield conn, opened
                    await conn.execute("COMMIT")
                    await stack.aclose()
                except BaseException:
                    await _aclose_quietly(stack)
                    await _arollback(conn)
                    raise
        finally:
            self._current.reset(token)
            await self.pool.putconn(conn)

    async def _begin(
        self, write: bool, opening: Callable[[], Program[T]], action: str
    ) -> tuple[psycopg.AsyncConnection, AsyncExitStack, T]:
        attempt = 0
        while True:
            conn = await self._getconn(action)
            stack = AsyncExitStack()
            try:
                if write and self._pipeline:
                    await stack.enter_async_context(conn.pipeline())
                await conn.execute(BEGIN_WRITE if write else BEGIN_READ)
                return conn, stack, await drive_program(opening(), conn)
            except BaseException as exc:
                await _aclose_quietly(stack)
                await _arollback(conn)
                await self.pool.putconn(conn)
                if self.retryable(exc, conn, attempt):
                    attempt += 1
                    continue
                if isinstance(exc, psycopg.Error):
                    with self.translating(action):
                        raise
                raise

    async def run(self, program: Callable[[], Program[T]], *, action: str) -> T:
        """:meth:`Database.run` with awaits: joins the task's open transaction, if any."""
        joined = self._current.get()
        if joined is not None:
            with self.translating(action):
                return await drive_program(program(), joined)
        attempt = 0
        while True:
            conn = await self._getconn(action)
            try:
                with self.translating(action):
                    try:
                        return await drive_program(program(), conn)
                    except psycopg.OperationalError as exc:
                        if not self.retryable(exc, conn, attempt):
                            raise
                attempt += 1
            finally:
                await self.pool.putconn(conn)

    async def close(self) -> None:
        await self.pool.close()


def _single(query: Query) -> Program[list[tuple[Any, ...]] | None]:
    return (yield query)


def _close_quietly(stack: ExitStack) -> None:
    """Leave pipeline mode after a failure; the first error is the one worth raising."""
    with suppress(psycopg.Error):
        stack.close()


async def _aclose_quietly(stack: AsyncExitStack) -> None:
    with suppress(psycopg.Error):
        await stack.aclose()


def _rollback(conn: psycopg.Connection) -> None:
    if conn.broken or conn.closed:
        return
    with suppress(psycopg.Error):  # the pool discards a connection it cannot reset
        conn.execute("ROLLBACK")


async def _arollback(conn: psycopg.AsyncConnection) -> None:
    if conn.broken or conn.closed:
        return
    with suppress(psycopg.Error):
        await conn.execute("ROLLBACK")
