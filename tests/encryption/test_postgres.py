"""Encrypted sessions in PostgreSQL: no table holds plaintext, and only the right key reads them back.

The scan reads every table of the schema through SQL, each row both as the server's text
form (``t::text``: text columns clear, ``bytea`` in hex) and with its values fetched raw
(``bytea`` as the stored bytes, TOAST already undone), so a secret cannot hide in either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.codec import ENCRYPTED_MAGIC
from lash.errors import DecryptionError, KeyUnavailableError
from lash.keys import generate_key

pytest.importorskip("lash_postgres")
from lash_postgres.testing import PostgresServer
from psycopg import sql

DIARY = "the diary of tangerine secrets"
"""A plugin's snapshot, stored in the ``plugin_snapshot`` blob."""


class Diary:
    """A stateful plugin: its snapshot is a secret too."""

    def __init__(self, entry: str | None = None) -> None:
        self.entry = entry

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return self.entry

    @lash.hookimpl
    def lash_restore_session(self, session: lash.Session, snapshot: Any) -> None:
        self.entry = snapshot


class PostgresTables:
    """Every row of every table of one schema, read behind lash's back."""

    def __init__(self, server: PostgresServer, schema: str) -> None:
        self.schema = schema
        self.conn = server.connect()

    def names(self) -> list[str]:
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name"
        return [row[0] for row in self.conn.execute(query, (self.schema,))]

    def rows(self, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        """``columns`` of every row of ``table``, ``bytea`` values as bytes."""
        query = sql.SQL("SELECT {} FROM {}.{}").format(
            sql.SQL(columns), sql.Identifier(self.schema), sql.Identifier(table)
        )
        return self.conn.execute(query, binary=True).fetchall()

    def dump(self) -> bytes:
        """Each row's text form, then each of its values raw: everything a reader of the tables can see."""
        parts: list[bytes] = []
        for table in self.names():
            query = sql.SQL("SELECT t::text, t.* FROM {}.{} AS t").format(
                sql.Identifier(self.schema), sql.Identifier(table)
            )
            for row in self.conn.execute(query):
                parts.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
        return b"\n".join(parts)


@pytest.fixture
def tables(postgres_server: PostgresServer, postgres_schema: str) -> Iterator[PostgresTables]:
    tables = PostgresTables(postgres_server, postgres_schema)
    yield tables
    tables.conn.close()


@pytest.fixture
def postgres_config(postgres_server: PostgresServer, postgres_schema: str) -> Any:
    """``postgres_config(encryption=None, blobs=None)``: this test's schema; blobs uncompressed, so a scan sees them."""

    def config(encryption: dict[str, Any] | None = None, blobs: dict[str, Any] | None = None) -> dict[str, Any]:
        options = {
            "dsn": postgres_server.dsn(),
            "schema": postgres_schema,
            "pool_max": 2,
            "blob_profile": "low_latency",
        }
        data: dict[str, Any] = {"store": {"backend": "postgres", "options": options}, "gc": {"auto_every_commits": 0}}
        if encryption is not None:
            data["encryption"] = encryption
        if blobs is not None:
            data["blobs"] = blobs
        return data

    return config


def record(config: dict[str, Any], secrets: Any) -> None:
    """:meth:`Secrets.record` into ``vault``, with :data:`DIARY` as a plugin's snapshot."""
    with lash.open(config, plugins=[Diary(DIARY)]) as handle:
        secrets.record(handle)


def check(config: dict[str, Any], secrets: Any) -> None:
    """``vault`` resumes exactly as :func:`record` wrote it, plugin state included."""
    diary = Diary()
    with lash.open(config, plugins=[diary]) as handle:
        secrets.check(handle)
    assert diary.entry == DIARY


def found_in(secrets: Any, data: bytes) -> list[str]:
    return secrets.found_in(data) + (["plugin snapshot"] if DIARY.encode() in data else [])


@pytest.fixture
def s3_blobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``[blobs]`` in a fresh bucket of an in-process moto, with fake credentials."""
    pytest.importorskip("lash_s3")
    moto = pytest.importorskip("moto")
    from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, empty_aws_files

    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        bucket = f"lash-pg-{uuid.uuid4().hex[:12]}"
        yield {"backend": "s3", "options": {"bucket": bucket, "create_bucket": True, "blob_profile": "low_latency"}}


def bucket_bytes(bucket: str) -> bytes:
    import boto3

    client = boto3.client("s3", region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", ())]
    assert keys, "the bucket is empty"
    return b"".join(client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys)


def test_no_plaintext_of_a_session_reaches_any_postgres_table(
    postgres_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, tables: PostgresTables
) -> None:
    config = postgres_config(env_encryption)
    record(config, secrets)
    assert {"heads", "nodes", "ledger", "meta", "blobs", "sessions"} <= set(tables.names())
    assert found_in(secrets, tables.dump()) == []
    check(config, secrets)


def test_with_s3_blobs_neither_the_tables_nor_the_bucket_hold_plaintext(
    postgres_config: Any,
    env_encryption: dict[str, Any],
    master_key: str,
    secrets: Any,
    tables: PostgresTables,
    s3_blobs: dict[str, Any],
) -> None:
    config = postgres_config(env_encryption, s3_blobs)
    record(config, secrets)
    assert tables.rows("blobs") == []  # the blobs went to the bucket
    assert found_in(secrets, tables.dump()) == []
    assert found_in(secrets, bucket_bytes(s3_blobs["options"]["bucket"])) == []
    check(config, secrets)


def test_the_same_session_unencrypted_shows_its_plaintext_in_the_tables(
    postgres_config: Any, secrets: Any, tables: PostgresTables
) -> None:
    """The scan finds what it looks for, so its silence above means something."""
    record(postgres_config(), secrets)
    assert set(found_in(secrets, tables.dump())) == {"message", "tool", "model", "execution state", "plugin snapshot"}


def test_every_postgres_record_is_sealed_and_only_ids_stay_clear(
    postgres_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, tables: PostgresTables
) -> None:
    record(postgres_config(env_encryption), secrets)
    for table in ("heads", "meta", "nodes", "ledger"):
        sealed = tables.rows(table, "data")
        assert sealed and all(data.startswith(ENCRYPTED_MAGIC) for (data,) in sealed), table
    envelopes = tables.rows("blobs", "envelope")
    assert envelopes and all(envelope.startswith(ENCRYPTED_MAGIC) for (envelope,) in envelopes)
    ledger_keys = tables.rows("ledger", "source, model")
    assert ledger_keys and all(model == "" and len(source) == 64 for source, model in ledger_keys)


def test_a_wrong_key_names_the_session_and_changes_no_row(
    monkeypatch: pytest.MonkeyPatch,
    postgres_config: Any,
    env_encryption: dict[str, Any],
    master_key: str,
    secrets: Any,
    tables: PostgresTables,
) -> None:
    config = postgres_config(env_encryption)
    record(config, secrets)
    before = tables.dump()
    monkeypatch.setenv("LASH_MASTER_KEY", generate_key())
    with lash.open(config) as handle, pytest.raises(DecryptionError) as info:
        handle.session("vault")
    assert "head of session 'vault'" in str(info.value) and "not the key it was written with" in str(info.value)
    assert tables.dump() == before
    monkeypatch.setenv("LASH_MASTER_KEY", master_key)
    check(config, secrets)


def test_without_its_key_a_postgres_session_fails_clearly_and_changes_no_row(
    monkeypatch: pytest.MonkeyPatch,
    postgres_config: Any,
    env_encryption: dict[str, Any],
    master_key: str,
    secrets: Any,
    tables: PostgresTables,
) -> None:
    config = postgres_config(env_encryption)
    record(config, secrets)
    before = tables.dump()
    monkeypatch.delenv("LASH_MASTER_KEY")
    with pytest.raises(KeyUnavailableError, match="environment variable LASH_MASTER_KEY is not set"):
        lash.open(config)
    monkeypatch.setenv("LASH_NEW_KEY", generate_key())  # rotated to a new key, the old one gone
    rotated = postgres_config({"key_provider": "env", "key_id": "new", "options": {"keys": {"new": "LASH_NEW_KEY"}}})
    with lash.open(rotated) as handle, pytest.raises(KeyUnavailableError) as info:
        handle.session("vault")
    assert info.value.key_id == "default" and "head of session 'vault'" in str(info.value)
    with (
        lash.open(postgres_config()) as handle,
        pytest.raises(DecryptionError, match=r"\[encryption\] is not configured"),
    ):
        handle.session("vault")
    assert tables.dump() == before
    monkeypatch.setenv("LASH_MASTER_KEY", master_key)
    check(config, secrets)
