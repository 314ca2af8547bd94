"""Encrypted blobs on S3 (in-process moto): the backend contract holds, and no object holds plaintext."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.model import BlobRef
from lash.store import Backend, SessionStore
from lash.testing import BackendTests
from lash.testing.blob_store import TAMPERED_CONTENT
from lash.testing.encryption import encrypt_if

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
lash_s3 = pytest.importorskip("lash_s3")
lash_sqlite = pytest.importorskip("lash_sqlite")


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and empty AWS files: nothing reaches real AWS."""
    from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, empty_aws_files

    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def moto_in_process() -> Iterator[None]:
    with moto.mock_aws():
        yield


@pytest.fixture
def bucket(moto_in_process: None) -> str:
    return f"lash-enc-{uuid.uuid4().hex[:12]}"


def every_object(bucket: str) -> bytes:
    """The bytes of every object in ``bucket``, read with a raw client."""
    client = boto3.client("s3", region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    assert keys, "the bucket is empty"
    return b"".join(client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys)


def overwrite_object(store: SessionStore, ref: BlobRef) -> None:
    storage = store.blobs.storage
    storage.client.put_object(Bucket=storage.bucket, Key=storage.key(ref), Body=TAMPERED_CONTENT)


class TestEncryptedS3Backend(BackendTests):
    """The whole backend contract with sessions and blobs in one bucket, everything sealed.

    (SQLite sessions with S3 blobs run the same sealed blob store; the end-to-end test below
    covers that composition without a second ~70-test run against moto.)
    """

    stored_at_resolution = 1.0

    @staticmethod
    def build(bucket: str, *, create_bucket: bool = False) -> Backend:
        return lash_s3.s3_backend(
            bucket=bucket, prefix="lash", create_bucket=create_bucket, gc_grace_seconds=0, refresh_after_seconds=0
        )

    @pytest.fixture
    def backend(self, bucket: str) -> Iterator[Backend]:
        backend = encrypt_if(True, self.build(bucket, create_bucket=True))
        yield backend
        backend.close()

    def reopen(self, backend: Backend) -> Backend:
        assert backend.encryption is not None
        backend.close()
        reopened = self.build(backend.objects.bucket)
        reopened.attach_encryption(backend.encryption)
        return reopened

    def tamper_blob(self, backend: Backend, store: SessionStore, ref: BlobRef) -> None:
        overwrite_object(store, ref)


@pytest.mark.parametrize("sessions_in", ["sqlite", "s3"])
def test_no_plaintext_reaches_the_bucket_or_the_sqlite_files(
    sessions_in: str, bucket: str, master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    s3 = {"bucket": bucket, "create_bucket": True, "blob_profile": "low_latency"}
    config = {
        "store": {"backend": "sqlite", "options": {"path": str(raw_sqlite.sessions_dir)}},
        "blobs": {"backend": "s3", "options": s3},
        "encryption": {"key_provider": "env"},
    }
    if sessions_in == "s3":
        config = {"store": {"backend": "s3", "options": s3}, "encryption": {"key_provider": "env"}}
    with lash.open(config) as handle:
        secrets.record(handle)
        secrets.record(handle, "vault-2")
    assert secrets.found_in(every_object(bucket)) == []
    if sessions_in == "sqlite":
        assert secrets.found_in(raw_sqlite.all_bytes()) == []
    with lash.open(config) as handle:
        secrets.check(handle)
        secrets.check(handle, "vault-2")


def test_the_same_session_unencrypted_does_show_its_plaintext(bucket: str, secrets: Any) -> None:
    """The scan finds plaintext when it is there (low_latency: no compression hides it)."""
    s3 = {"bucket": bucket, "create_bucket": True, "blob_profile": "low_latency"}
    with lash.open({"store": {"backend": "s3", "options": s3}}) as handle:
        secrets.record(handle)
    assert set(secrets.found_in(every_object(bucket))) == {"message", "tool", "model", "execution state"}
