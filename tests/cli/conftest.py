"""Run the real ``lash`` console script against temporary directories and a moto S3 server."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.cli.equality import of_read

HAS_SQLITE = importlib.util.find_spec("lash_sqlite") is not None
HAS_S3 = importlib.util.find_spec("lash_s3") is not None and importlib.util.find_spec("moto") is not None

TERMINAL_ENV = ("LASH_CONFIG", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "LINES")
"""Left out of the child's environment: the tests decide about config and terminals themselves."""

Run = Callable[..., subprocess.CompletedProcess[str]]


def lash_command(module: bool = False) -> list[str]:
    return [sys.executable, "-m", "lash"] if module else [shutil.which("lash") or "lash"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_ENV}
    return {**env, **(extra or {})}


def _run(
    *args: str, cwd: Path, module: bool = False, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lash_command(module), *args],
        cwd=cwd,
        env=child_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- sessions to work on ------------------------------------------------------------------


def sqlite_config(path: Path, sessions_dir: str) -> Path:
    path.write_text(f'[store]\nbackend = "sqlite"\noptions = {{ path = "{sessions_dir}" }}\n', encoding="utf-8")
    return path


def record_sessions(config: Path, count: int, *, turns: int = 1) -> None:
    """``count`` sessions of ``turns`` commits, each with tools, execution state and usage.

    Every turn changes the tools and the execution state, so a session of several turns
    leaves the snapshot blobs of its earlier commits unreferenced (what ``lash gc`` deletes).
    """
    with lash.open(config) as handle:
        for index in range(count):
            session = handle.session(f"agent-{index:02d}")
            for turn in range(turns):
                session.append_message("user", f"task {index}.{turn}: fix the flaky test")
                session.append_message("assistant", f"looked at module {index}. " * 20)
                session.tools.register({"name": f"tool_{index}_{turn}", "description": "reads files " * 30})
                session.record_usage("agent", "model-a", lash.TokenUsage(input_tokens=100 + turn, output_tokens=7))
                session.set_execution_state(f"cursor={index}.{turn}".encode() * 50)
                session.commit()
            session.close()


def committed_ids(config: Path) -> set[str]:
    """Ids of the sessions that have a head in the backend of ``config``."""
    with lash.open(config) as handle:
        return {i.session_id for i in handle.sessions() if i.head_revision is not None}


def assert_same_sessions(source_config: Path, target_config: Path) -> None:
    """Every source session reads back equal from the target, and every blob its head needs is there."""
    with lash.open(source_config) as source, lash.open(target_config) as target:
        infos = source.sessions()
        assert {i.session_id for i in target.sessions()} == {i.session_id for i in infos}
        for info in infos:
            with (
                closing(source.backend.open_session(info.session_id, create=False)) as original,
                closing(target.backend.open_session(info.session_id, create=False)) as copy,
            ):
                expected, actual = original.load_session(), copy.load_session()
                assert of_read(actual) == of_read(expected)
                assert actual.checkpoint_ref == expected.checkpoint_ref  # same manifest, by content address
                assert expected.checkpoint.tool_state is not None  # so blobs really travelled
                assert copy.blobs.get(actual.checkpoint_ref) == original.blobs.get(expected.checkpoint_ref)


# --- running lash ------------------------------------------------------------------------


@pytest.fixture
def lash_cli(tmp_path: Path) -> Run:
    """``lash_cli("sessions", "--json")`` runs ``lash`` in ``tmp_path`` and returns the process.

    ``env=`` adds variables to the child's environment.
    """

    def run(
        *args: str,
        cwd: Path = tmp_path,
        module: bool = False,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return _run(*args, cwd=cwd, module=module, stdin=stdin, env=env)

    return run


@pytest.fixture
def memory_config(tmp_path: Path) -> Path:
    path = tmp_path / "memory.toml"
    path.write_text('[store]\nbackend = "memory"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where ``lash demo --dir`` left its SQLite sessions and ``lash.toml``.

    Shared by every test that only reads it; a test that writes works on a copy.
    """
    if not HAS_SQLITE:
        pytest.skip("lash-sqlite is not installed")
    directory = tmp_path_factory.mktemp("demo")
    done = _run("demo", "--turns", "8", "--dir", str(directory), cwd=directory)
    assert done.returncode == 0, done.stderr
    return directory


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One ``python -m moto.server`` on a free 127.0.0.1 port for the whole test session."""
    if not (HAS_S3 and HAS_SQLITE):
        pytest.skip("lash-s3, moto[server] and lash-sqlite are needed")
    from lash_s3.testing import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto-aws"))
    yield server
    server.stop()


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS settings, for this process (``monkeypatch``) and for ``lash_cli(..., env=aws_env)``."""
    from lash_s3.testing import UNSET_AWS_ENV, fake_aws_environ

    env = fake_aws_environ(tmp_path / "aws", base={})
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
