"""Fixtures: every lash backend LashSession is proven on, as one parametrised fixture.

``lash_config`` is a factory of fresh lash configs (each call: a new, empty store) for the
backend under test. Adding a backend is one entry in ``BACKENDS``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import set_tracing_disabled
from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, empty_aws_files
from moto import mock_aws

ConfigFactory = Callable[[], dict[str, Any]]
_counter = itertools.count()

set_tracing_disabled(True)  # no trace export (it would need network and an API key)


def _memory(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"store": {"backend": "memory"}}


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / f"sessions-{next(_counter)}")}}}


def _sqlite_s3(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    request.getfixturevalue("moto_in_process")
    bucket = f"lash-openai-agents-{uuid.uuid4().hex[:12]}"
    return {
        **_sqlite(tmp_path, request),
        "blobs": {"backend": "s3", "options": {"bucket": bucket, "region": "us-east-1", "create_bucket": True}},
    }


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], dict[str, Any]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "sqlite+s3": _sqlite_s3,
}


@pytest.fixture(params=sorted(BACKENDS))
def lash_config(request: pytest.FixtureRequest, tmp_path: Path) -> ConfigFactory:
    """A factory of fresh lash configs for each backend in ``BACKENDS``."""
    make = BACKENDS[request.param]
    return lambda: make(tmp_path, request)


@pytest.fixture
def sqlite_config(tmp_path: Path) -> dict[str, Any]:
    """One durable SQLite store (several handles or processes can open it)."""
    return {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}}}


@pytest.fixture
def moto_in_process(fake_aws_credentials: None) -> Iterator[None]:
    """S3 answered by moto inside this process (``moto.mock_aws``)."""
    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials for moto and nothing from the developer's AWS setup."""
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}.items():
        monkeypatch.setenv(name, value)
