"""A pool of psycopg connections and the transactions lash runs on them.

Connections are autocommit; a lash transaction is an explicit ``BEGIN`` … ``COMMIT``:

* a *write* transaction is ``READ COMMITTED`` and runs in pipeline mode, so its opening
  statement (which takes the session's write lock) travels with the ``BEGIN``, and the
  writes a commit queues travel together;
* a *read* transaction is ``REPEATABLE READ READ ONLY``, so the head, the nodes and the
  ledger it reads belong to one snapshot.

A connection the server dropped (a restart, a failover, an idle timeout) is noticed at
that first round trip, before anything was done, and replaced by another one from the pool;
an error later in a transaction is reported, never retried behind the caller's back.
Blob operations called while this thread has a transaction open (a commit writing its
snapshots) join that transaction, so they commit or roll back with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from lash.errors import BackendError, SessionClosedError
from lash_postgres.errors import ConnectionTarget, translating

T = TypeVar("T")

BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

Opening = Callable[[psycopg.Connection], T]


class Database:
    """The pool of one backend, shared by its sessions and its blob table."""

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
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._pipeline = psycopg.Pipeline.is_supported()
        self.pool = ConnectionPool(
            target.conninfo,
            min_size=pool_min,
            max_size=pool_max,
            kwargs={"autocommit": True, "connect_timeout": max(2, round(connect_timeout))},
            configure=self._configure,
            timeout=connect_timeout,
            name="lash-postgres",
            open=False,
        )
        self.pool.open(wait=False)

    def __repr__(self) -> str:
        return f"<Database {self.target.display}>"

    def _configure(self, conn: psycopg.Connection) -> None:
        """Per new connection: the statement timeout (milliseconds, 0 = none)."""
        timeout_ms = str(round(self.statement_timeout * 1000))
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout_ms,))

    def translating(self, action: str) -> AbstractContextManager[None]:
        """Turn psycopg errors raised in the block into lash errors naming ``action``."""
        return translating(self.target, action, self.statement_timeout)

    def _getconn(self, action: str) -> psycopg.Connection:
        try:
            return self.pool.getconn()
        except PoolClosed as exc:
            raise SessionClosedError(f"the postgres backend at {self.target.display} is closed") from exc
        except PoolTimeout as exc:
            raise BackendError(
                f"PostgreSQL at {self.target.display}: no connection for {action} within {self.connect_timeout}s "
                f"(server unreachable, or all {self.pool.max_size} pooled connections busy; raise options.pool_max)"
            ) from exc

    def _retryable(self, exc: BaseException, conn: psycopg.Connection, attempt: int) -> bool:
        """Whether ``exc`` only says the server had dropped ``conn``, and another try is left.

        There are enough tries to skip every dead connection the pool may still hold.
        """
        return isinstance(exc, psycopg.OperationalError) and conn.broken and attempt < self.pool.max_size

    @contextmanager
    def transaction(self, *, write: bool, opening: Opening[T], action: str) -> Iterator[tuple[psycopg.Connection, T]]:
        """A transaction; ``opening(conn)`` runs right after ``BEGIN`` (same round trip if writing), result yielded."""
        if getattr(self._local, "conn", None) is not None:
            raise BackendError(f"{action}: this thread already has a lash transaction open")
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

    def _begin(self, write: bool, opening: Opening[T], action: str) -> tuple[psycopg.Connection, ExitStack, T]:
        """A connection inside ``BEGIN`` with ``opening`` done, skipping connections the server dropped."""
        attempt = 0
        while True:
            conn = self._getconn(action)
            stack = ExitStack()
            try:
                if write and self._pipeline:
                    stack.enter_context(conn.pipeline())
                conn.execute(BEGIN_WRITE if write else BEGIN_READ)
                return conn, stack, opening(conn)
            except BaseException as exc:
                _close_quietly(stack)
                _rollback(conn)
                self.pool.putconn(conn)
                if self._retryable(exc, conn, attempt):
                    attempt += 1
                    continue
                if isinstance(exc, psycopg.Error):
                    with self.translating(action):
                        raise
                raise

    def run(self, work: Callable[[psycopg.Connection], T], *, action: str) -> T:
        """``work(conn)``: in this thread's open transaction, else alone on a pooled autocommit connection.

        ``work`` must be idempotent: on a connection the server dropped it is run again on another.
        """
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            with self.translating(action):
                return work(joined)
        attempt = 0
        while True:
            conn = self._getconn(action)
            try:
                with self.translating(action):
                    try:
                        return work(conn)
                    except psycopg.OperationalError as exc:
                        if not self._retryable(exc, conn, attempt):
                            raise
                attempt += 1
            finally:
                self.pool.putconn(conn)

    def close(self) -> None:
        self.pool.close()


def _close_quietly(stack: ExitStack) -> None:
    """Leave pipeline mode after a failure; the first error is the one worth raising."""
    with suppress(psycopg.Error):
        stack.close()


def _rollback(conn: psycopg.Connection) -> None:
    if conn.broken or conn.closed:
        return
    with suppress(psycopg.Error):  # the pool discards a connection it cannot reset
        conn.execute("ROLLBACK")
