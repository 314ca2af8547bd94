"""Fixtures to run code built on lash against every backend: memory, SQLite, SQLite+S3, Postgres.

Part of lash's pytest plugin (entry point ``pytest11``), so installing ``lash[test]`` makes
these fixtures available to any test suite, an integration's or a third party's:

* ``lash_backend_config``: parametrised over :data:`BACKENDS`; a factory whose every call
  returns the config of a fresh, empty store of the backend under test. A test that asks for
  it runs once per backend (ids ``memory``, ``sqlite``, ``sqlite+s3``, ``postgres``).
* ``lash_sqlite_config``: one durable SQLite store (several handles or processes can open it).
* ``lash_moto_server``: an S3 endpoint over HTTP on 127.0.0.1 (moto's server in a
  subprocess), one per test session.

``sqlite+s3`` needs lash-s3 and ``moto[server]``, ``postgres`` needs lash-postgres and the
PostgreSQL server binaries (its ``postgres_server`` fixture starts a throwaway server; each
config gets its own schema, dropped after the test). A case whose parts are missing skips
with the reason, except Postgres when ``$LASH_REQUIRE_POSTGRES`` is set (CI): then it fails.
Nothing here imports boto3, moto or psycopg until a case needs them.

::

    def test_my_adapter_round_trips(lash_backend_config):
        with lash.open(lash_backend_config()) as handle:
            ...

:func:`backend_config` gives the same factories to tests that choose backends themselves.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lash_s3.testing import MotoServer

ConfigFactory = Callable[[], dict[str, Any]]
"""Each call: the config dict of a fresh, empty store."""

REQUIRE_POSTGRES_ENV = "LASH_REQUIRE_POSTGRES"

_numbers = itertools.count()


def _memory(request: pytest.FixtureRequest) -> ConfigFactory:
    return lambda: {"store": {"backend": "memory"}}


def _sqlite(request: pytest.FixtureRequest) -> ConfigFactory:
    directory: Path = request.getfixturevalue("tmp_path")
    return lambda: {"store": {"backend": "sqlite", "options": {"path": str(directory / f"sessions-{next(_numbers)}")}}}


def _sqlite_s3(request: pytest.FixtureRequest) -> ConfigFactory:
    sqlite = _sqlite(request)
    server: MotoServer = request.getfixturevalue("lash_moto_server")
    _use_fake_aws_credentials(request)

    def make() -> dict[str, Any]:
        bucket = f"lash-test-{uuid.uuid4().hex[:16]}"
        options = {"bucket": bucket, "endpoint_url": server.endpoint_url, "region": "us-east-1", "create_bucket": True}
        return {**sqlite(), "blobs": {"backend": "s3", "options": options}}

    return make


def _postgres(request: pytest.FixtureRequest) -> ConfigFactory:
    if importlib.util.find_spec("lash_postgres") is None:
        _missing("lash-postgres is not installed (pip install lash-postgres)", required=REQUIRE_POSTGRES_ENV)
    from lash_postgres.testing import drop_schema

    server = request.getfixturevalue("postgres_server")  # skips, or fails under $LASH_REQUIRE_POSTGRES

    def make() -> dict[str, Any]:
        schema = f"test_{uuid.uuid4().hex[:16]}"
        request.addfinalizer(lambda: drop_schema(server, schema))
        return {"store": {"backend": "postgres", "options": {"dsn": server.dsn(), "schema": schema}}}

    return make


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], ConfigFactory]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "sqlite+s3": _sqlite_s3,
    "postgres": _postgres,
}
"""Every backend case by id, in the order tests run them."""


def backend_config(name: str, request: pytest.FixtureRequest) -> ConfigFactory:
    """The config factory of backend case ``name`` (a key of :data:`BACKENDS`) for this test."""
    return BACKENDS[name](request)


@pytest.fixture(params=list(BACKENDS))
def lash_backend_config(request: pytest.FixtureRequest) -> ConfigFactory:
    """A factory of fresh lash configs, once for each backend in :data:`BACKENDS`."""
    return backend_config(request.param, request)


@pytest.fixture
def lash_sqlite_config(tmp_path: Path) -> dict[str, Any]:
    """One durable SQLite store (several handles or processes can open it)."""
    return {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}}}


@pytest.fixture(scope="session")
def lash_moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server on a free 127.0.0.1 port for the whole test session."""
    for module, package in (("lash_s3", "lash-s3"), ("moto.server", "moto[server]")):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            _missing(f"{package} is not installed")
    from lash_s3.testing import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto-aws"))
    try:
        yield server
    finally:
        server.stop()


def _use_fake_aws_credentials(request: pytest.FixtureRequest) -> None:
    """Fake credentials for this test, and nothing from the developer's AWS setup."""
    from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, empty_aws_files

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    directory: Path = request.getfixturevalue("tmp_path")
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS_ENV, **empty_aws_files(directory / "aws")}.items():
        monkeypatch.setenv(name, value)


def _missing(reason: str, *, required: str | None = None) -> None:
    """Skip the case, or fail it when ``required`` names a set environment variable."""
    if required and os.environ.get(required):
        pytest.fail(f"${required} is set but {reason}", pytrace=False)
    pytest.skip(reason)
