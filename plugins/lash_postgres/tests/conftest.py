"""Fixtures of the lash-postgres tests; the server fixtures come from ``lash_postgres.testing``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lash_postgres import PostgresBackend
from lash_postgres.testing import PostgresServer
from moto import mock_aws
from psycopg import sql

BackendFactory = Callable[..., PostgresBackend]


@pytest.fixture
def make_backend(postgres_server: PostgresServer, postgres_schema: str) -> Iterator[BackendFactory]:
    """``make_backend(**options)``: a backend on this test's fresh schema, closed after the test."""
    made: list[PostgresBackend] = []

    def make(**options: Any) -> PostgresBackend:
        options = {"dsn": postgres_server.dsn(), "schema": postgres_schema, "pool_max": 4, **options}
        backend = PostgresBackend(**options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def store_options(postgres_server: PostgresServer, postgres_schema: str) -> dict[str, Any]:
    """``[store] options`` of this test's fresh schema."""
    return {"dsn": postgres_server.dsn(), "schema": postgres_schema, "pool_max": 4}


@pytest.fixture
def config(store_options: dict[str, Any]) -> dict[str, Any]:
    """A ``lash.open`` config on this test's schema (automatic GC off)."""
    return {"store": {"backend": "postgres", "options": store_options}, "gc": {"auto_every_commits": 0}}


@pytest.fixture(scope="module")
def shared_schema(postgres_server: PostgresServer) -> Iterator[str]:
    """One migrated schema for a whole module whose tests each start from :func:`empty_schema`."""
    name = f"module_{uuid.uuid4().hex[:16]}"
    PostgresBackend(dsn=postgres_server.dsn(), schema=name).close()  # creates and migrates it
    yield name
    postgres_server.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def empty_schema(postgres_server: PostgresServer, shared_schema: str) -> str:
    """:func:`shared_schema` with every row deleted: as empty as a fresh one, without the DDL's cost."""
    empty(postgres_server, shared_schema)
    return shared_schema


def empty(server: PostgresServer, schema: str) -> None:
    """Delete every session (its rows go with it) and every blob of ``schema``."""
    server.execute(sql.SQL("DELETE FROM {0}.sessions; DELETE FROM {0}.blobs").format(sql.Identifier(schema)))


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """In-process moto with fake credentials and nothing from the developer's own AWS setup."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")
