"""Bad input and a failing server: clear lash errors that name the problem, never the password."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from lash_postgres import DSN_ENV, PostgresBackend
from lash_postgres.testing import PostgresServer
from psycopg import sql

import lash
from lash.errors import BackendError, ConfigError, SessionClosedError
from lash.testing import SessionWriter, chain

from .conftest import BackendFactory


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The error, its causes and every log record: where a leaked password would show."""
    texts = [caplog.text]
    while exc is not None:
        texts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


def test_dsn_falls_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    monkeypatch.setenv(DSN_ENV, postgres_server.dsn())
    config = {"store": {"backend": "postgres", "options": {"schema": postgres_schema}}}
    with lash.open(config) as handle:
        session = handle.session("from-env")
        session.append_message("user", "hello")
        session.commit()
    with lash.open(config) as handle:
        assert [info.session_id for info in handle.sessions()] == ["from-env"]


def test_missing_dsn_is_a_config_error_naming_both_places(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        lash.open({"store": {"backend": "postgres"}})
    assert "options.dsn" in str(info.value) and DSN_ENV in str(info.value)


def test_unreachable_server_is_a_backend_error_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = _closed_port()
    with pytest.raises(BackendError) as info:
        PostgresBackend(dsn=f"postgresql://lash:hunter2-secret@127.0.0.1:{port}/lash", connect_timeout=2)
    message = str(info.value)
    assert f"postgresql://lash@127.0.0.1:{port}/lash" in message and "unreachable" in message
    assert "hunter2-secret" not in _everything_said(info.value, caplog)


def test_wrong_password_is_a_config_error_that_never_shows_it(
    postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        lash.open(
            {"store": {"backend": "postgres", "options": {"dsn": postgres_server.password_dsn(password="pw-XYZ")}}}
        )
    assert "refused the credentials" in str(info.value) and "store.options.dsn" in str(info.value)
    assert "pw-XYZ" not in _everything_said(info.value, caplog)


def test_right_password_never_appears_in_repr_or_errors(
    make_backend: BackendFactory, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = make_backend(dsn=postgres_server.password_dsn(), statement_timeout=0.2)
    store = backend.open_session("locked")
    assert store is not None
    with postgres_server.connect() as locker, locker.transaction():  # another host holds the session lock
        statement = sql.SQL("SELECT 1 FROM {}.sessions WHERE session_id = 'locked' FOR UPDATE")
        locker.execute(statement.format(sql.Identifier(backend.schema)))
        with pytest.raises(BackendError) as info:
            SessionWriter(store).append(*chain("a"))
    said = _everything_said(info.value, caplog) + repr(backend) + repr(backend.target) + repr(store)
    assert postgres_server.password not in said
    store.close()


def test_missing_database_is_a_config_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(ConfigError) as info:
        PostgresBackend(dsn=postgres_server.dsn("no_such_database"))
    assert "database does not exist" in str(info.value) and "no_such_database" in str(info.value)


def test_statement_timeout_is_a_backend_error_and_writes_nothing(
    make_backend: BackendFactory, postgres_server: PostgresServer
) -> None:
    backend = make_backend(statement_timeout=0.2)
    store = backend.open_session("slow")
    assert store is not None
    writer = SessionWriter(store)
    writer.append(*chain("a"))
    with postgres_server.connect() as locker, locker.transaction():
        statement = sql.SQL("LOCK TABLE {}.nodes IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(backend.schema))
        locker.execute(statement)
        with pytest.raises(BackendError) as info:
            writer.append(*chain("b", parent_id="a"))
    assert "statement_timeout=0.2s" in str(info.value)
    read = store.load_session()
    assert read is not None and (read.head_revision, list(read.graph.nodes)) == (1, ["a"])
    store.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [("pool_max", 0), ("pool_min", -1), ("statement_timeout", "soon"), ("schema", ""), ("schema", "s" * 64)],
)
def test_invalid_options_are_config_errors_naming_the_key(
    postgres_server: PostgresServer, option: str, value: Any
) -> None:
    options = {"dsn": postgres_server.dsn(), option: value}
    with pytest.raises(ConfigError) as info:
        lash.open({"store": {"backend": "postgres", "options": options}})
    assert f"store.options.{option}" in str(info.value)


def test_unparsable_dsn_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        PostgresBackend(dsn="postgresql://lash:sekrit-pw@127.0.0.1:5432/lash?no_such_option=1")
    assert "sekrit-pw" not in str(info.value) and "options.dsn" in str(info.value)


def test_closed_backend_raises_session_closed(make_backend: BackendFactory) -> None:
    backend = make_backend()
    store = backend.open_session("open-before-close")
    assert store is not None
    backend.close()
    with pytest.raises(SessionClosedError):
        backend.open_session("after-close")
    with pytest.raises(SessionClosedError):
        store.load_session()
