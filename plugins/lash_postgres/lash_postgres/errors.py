"""Where lash connects to, shown without its password, and psycopg errors as lash errors.

Every message names the server (``postgresql://user@host:port/db``) and what went wrong;
the password of the DSN never appears in a message, a log line or a ``repr``: it is cut
from the display form and scrubbed from any server or libpq text that might echo it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from lash.errors import BackendError, ConfigError, LashError

DSN_ENV = "LASH_POSTGRES_DSN"
"""The environment variable read when ``options.dsn`` is not set."""

_DSN_KEY = "options.dsn"

_AUTH_STATES = ("28P01", "28000")  # invalid_password, invalid_authorization_specification
_NO_DATABASE = "3D000"  # invalid_catalog_name


@attrs.frozen(repr=False)
class ConnectionTarget:
    """A DSN and its password-free display form."""

    conninfo: str
    display: str
    password: str | None

    @classmethod
    def parse(cls, dsn: str | None) -> ConnectionTarget:
        """The target of ``dsn``, else of ``$LASH_POSTGRES_DSN``; :class:`ConfigError` if neither parses."""
        dsn = dsn if dsn is not None else os.environ.get(DSN_ENV)
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigError(f"no PostgreSQL DSN: set options.dsn or ${DSN_ENV}", key=_DSN_KEY)
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            password = _password_in(dsn)
            raise ConfigError(
                f"the PostgreSQL DSN does not parse: {_scrub(str(exc), password)}", key=_DSN_KEY
            ) from None
        password = params.get("password")
        user = params.get("user") or ""
        host = params.get("host") or params.get("hostaddr") or "localhost"
        port = params.get("port") or "5432"
        display = f"postgresql://{user + '@' if user else ''}{host}:{port}/{params.get('dbname') or user}"
        return cls(dsn, display, str(password) if password else None)

    def __repr__(self) -> str:
        return f"<ConnectionTarget {self.display}>"

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ``***``."""
        return _scrub(text, self.password)


def _password_in(dsn: str) -> str | None:
    """Best effort for a DSN that does not parse: the text between ``user:`` and ``@`` of a URL."""
    _, sep, rest = dsn.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    return userinfo.partition(":")[2] or None


def _scrub(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def translate(exc: psycopg.Error, target: ConnectionTarget, action: str, statement_timeout: float) -> LashError:
    """The lash error that explains ``exc``, raised while doing ``action`` on ``target``."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = target.scrub(" ".join(str(exc).split()))  # libpq's messages span lines
    where = f"PostgreSQL at {target.display}"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return BackendError(
            f"{where}: {action} was cancelled after statement_timeout={statement_timeout}s ({_first_line(exc)}); "
            "the server is overloaded or a lock is held too long; retry, or raise options.statement_timeout"
        )
    if sqlstate in _AUTH_STATES or "password authentication failed" in text:
        return ConfigError(
            f"{where} refused the credentials ({target.scrub(_first_line(exc))}); fix the user or password "
            f"in options.dsn / ${DSN_ENV}",
            key=_DSN_KEY,
        )
    if sqlstate == _NO_DATABASE or ("database" in text and "does not exist" in text):
        return ConfigError(
            f"{where}: the database does not exist ({target.scrub(_first_line(exc))}); create it or fix the "
            f"database name in options.dsn / ${DSN_ENV}",
            key=_DSN_KEY,
        )
    if isinstance(exc, psycopg.OperationalError):
        return BackendError(
            f"{where}: {action} failed, the server is unreachable or the connection was lost ({text}); "
            "an interrupted commit may or may not have been applied: refresh the session and retry"
        )
    return BackendError(f"{where}: {action} failed: {type(exc).__name__}: {text}")


@contextmanager
def translating(target: ConnectionTarget, action: str, statement_timeout: float) -> Iterator[None]:
    """Turn psycopg errors raised in the block into lash errors."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, target, action, statement_timeout) from exc
