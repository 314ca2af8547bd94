"""Fixtures for the lash-s3 tests: fake AWS credentials, in-process moto, and a moto server.

No test reaches real AWS: every test runs with fake credentials, empty AWS config files and
the instance-metadata lookup disabled, either inside ``moto.mock_aws`` or against a
``python -m moto.server`` subprocess on a free local port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from lash_s3 import s3_blob_store
from moto import mock_aws

from lash.blobs import EnvelopeBlobStore

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # a missing-credentials lookup must not wait for IMDS
}
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def empty_aws_files(directory: Path) -> dict[str, str]:
    """Env vars pointing the shared credentials and config files at empty files."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials, config = directory / "credentials", directory / "config"
    credentials.touch()
    config.touch()
    return {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials for moto, and nothing from the developer's own AWS setup."""
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    env = {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


class MotoServer:
    """``python -m moto.server`` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, env_dir: Path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **FAKE_AWS_ENV, **empty_aws_files(env_dir)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} within {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self) -> Any:
        """A raw boto3 client for touching the bucket behind the store's back."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}),
        )


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
