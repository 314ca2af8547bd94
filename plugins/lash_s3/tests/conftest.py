"""Fixtures for the lash-s3 tests: fake AWS credentials, in-process moto, and a moto server.

No test reaches real AWS: every test runs with fake credentials, empty AWS config files and
the instance-metadata lookup disabled, either inside ``moto.mock_aws`` or against a
``python -m moto.server`` subprocess on a free local port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lash_s3 import s3_blob_store
from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, MotoServer, empty_aws_files
from moto import mock_aws

from lash.blobs import EnvelopeBlobStore


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials for moto, and nothing from the developer's own AWS setup."""
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    env = {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the whole test session, stopped at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto-aws"))
    yield server
    server.stop()


@pytest.fixture
def bucket() -> str:
    """A bucket name no other test uses."""
    return f"lash-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_options(moto_server: MotoServer, bucket: str) -> dict[str, Any]:
    """``[blobs] options`` for a fresh bucket on the moto server, path-style."""
    return {
        "bucket": bucket,
        "endpoint_url": moto_server.endpoint_url,
        "addressing_style": "path",
        "create_bucket": True,
    }


@pytest.fixture(scope="module")
def moto_in_process() -> Iterator[None]:
    """``moto.mock_aws`` for a whole test module (tests isolate themselves by bucket name)."""
    with mock_aws():
        yield


@pytest.fixture
def mocked_s3(moto_in_process: None, fake_aws_credentials: dict[str, str]) -> Any:
    """A raw boto3 client of in-process moto, for touching buckets behind the store's back."""
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def mocked_store(mocked_s3: Any, bucket: str) -> EnvelopeBlobStore:
    """An ``s3`` blob store on a fresh in-process bucket."""
    return s3_blob_store(bucket=bucket, prefix="lash", create_bucket=True)
