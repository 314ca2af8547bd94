"""Test aids for code that talks to S3 through lash-s3: fake AWS settings and a moto server.

Shared by this distribution's tests and by any other test suite that needs an S3 endpoint
over HTTP (the ``lash`` CLI tests run the console script against it). Nothing here reaches
real AWS: the environment carries fake credentials, empty AWS config files and no instance
metadata lookup. Needs ``moto[server]`` (the ``test`` extra) to start the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

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


def fake_aws_environ(env_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) without the developer's AWS settings, with fake ones."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in UNSET_AWS_ENV}
    return {**env, **FAKE_AWS_ENV, **empty_aws_files(env_dir)}


class MotoServer:
    """``python -m moto.server`` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, env_dir: Path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=fake_aws_environ(env_dir),
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
