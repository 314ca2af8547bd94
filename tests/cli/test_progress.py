"""Long work draws a progress bar on a terminal and stays silent in pipes."""

from __future__ import annotations

import errno
import os
import pty
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lash.cli.migrate import PAUSE_ENV_VAR

from .conftest import HAS_SQLITE, child_env, lash_command, record_sessions, sqlite_config

Run = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.skipif(not HAS_SQLITE, reason="lash-sqlite is not installed")

ESC = "\x1b"


def run_on_terminal(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run ``lash`` with stdin, stdout and stderr on a pseudo-terminal; returns its exit code and output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*lash_command(), *args],
        cwd=cwd,
        env=child_env({"TERM": "xterm-256color", **(env or {})}),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError as exc:  # EIO: the child closed the terminal
            if exc.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(60), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def migration(tmp_path: Path) -> tuple[Path, Path]:
    """A directory with 5 sessions and the config of an empty target."""
    record_sessions(sqlite_config(tmp_path / "lash.toml", "sessions"), 5)
    return tmp_path, sqlite_config(tmp_path / "target.toml", "moved")


def test_demo_and_migrate_print_no_progress_or_escapes_in_a_pipe(
    lash_cli: Run, migration: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, target = migration
    for done in (
        lash_cli("demo", "--dir", str(tmp_path / "demo")),
        lash_cli("migrate", "--to", str(target), cwd=directory),
        lash_cli("gc", "--dry-run", cwd=directory),
    ):
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert ESC not in done.stdout
        for bar in ("recording turns", "copying sessions", "verifying", "scanning", "━"):
            assert bar not in done.stdout


def test_migrate_draws_progress_on_a_terminal(migration: tuple[Path, Path]) -> None:
    directory, target = migration
    code, output = run_on_terminal("migrate", "--to", str(target), cwd=directory, env={PAUSE_ENV_VAR: "0.2"})
    assert code == 0, output
    assert "copying sessions" in output and "/5" in output  # the bar with its counter
    assert ESC in output  # drawn and erased with terminal control codes
    assert "migrated 5 sessions" in output


def test_demo_draws_progress_on_a_terminal(tmp_path: Path) -> None:
    code, output = run_on_terminal("demo", "--turns", "40", cwd=tmp_path)
    assert code == 0, output
    assert "recording turns" in output
    assert "resumed in a new Lash: equal" in output
