"""Run the real ``lash`` console script against temporary directories."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HAS_SQLITE = importlib.util.find_spec("lash_sqlite") is not None

Run = Callable[..., subprocess.CompletedProcess[str]]


def _run(*args: str, cwd: Path, module: bool = False, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lash"] if module else [shutil.which("lash") or "lash"]
    env = {k: v for k, v in os.environ.items() if k != "LASH_CONFIG"}
    return subprocess.run([*command, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def lash_cli(tmp_path: Path) -> Run:
    """``lash_cli("sessions", "--json")`` runs ``lash`` in ``tmp_path`` and returns the process."""

    def run(
        *args: str, cwd: Path = tmp_path, module: bool = False, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _run(*args, cwd=cwd, module=module, stdin=stdin)

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
