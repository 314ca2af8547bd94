"""Fixtures for the runtime session tests, run against every backend in the repo.

``backend_config`` builds the ``lash.open()`` config dict for ``memory`` and ``sqlite``;
``place`` opens fresh :class:`lash.Lash` handles onto the same stored sessions, so a test
can resume "in a new handle". For ``memory`` that needs one backend shared by the handles
of a test, which an in-process plugin provides in place of the ``memory`` entry point.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from lash_memory import MemoryBackend

import lash
from lash.model import Commit, CommitResult

HELPERS = Path(__file__).with_name("helpers.py")


def _load_helpers() -> None:
    """Import ``helpers.py`` as ``session_helpers``, the name worker processes give it too."""
    if "session_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("session_helpers", HELPERS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["session_helpers"] = module
        spec.loader.exec_module(module)


_load_helpers()

BACKENDS = ("memory", "sqlite")


class SharedMemory:
    """Registers ``memory`` as one backend instance, so every handle of a test sees its sessions."""

    def __init__(self) -> None:
        self.backend = MemoryBackend()

    @lash.hookimpl
    def lash_register_backends(self, register: Callable[..., None]) -> None:
        register("memory", lambda options: self.backend)


@pytest.fixture(params=BACKENDS)
def backend_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """``{"store": {"backend": name, "options": {...}}}`` for each backend in the repo."""
    name = request.param
    if name == "sqlite" and importlib.util.find_spec("lash_sqlite") is None:
        pytest.skip("lash-sqlite is not installed (pip install -e plugins/lash_sqlite)")
    options = {"path": str(tmp_path / "sessions")} if name == "sqlite" else {}
    return {"store": {"backend": name, "options": options}}


@attrs.define
class Place:
    """Where a test's sessions are stored; each :meth:`open` is a new handle onto them."""

    config: dict[str, Any]
    tmp_path: Path
    builtin: tuple[object, ...] = ()

    @property
    def backend(self) -> str:
        return self.config["store"]["backend"]

    def open(self, *plugins: object, **sections: Any) -> lash.Lash:
        """A new :class:`lash.Lash` handle; ``sections`` add or replace config tables."""
        config = copy.deepcopy(self.config)
        config.update(sections)
        return lash.open(config, plugins=[*self.builtin, *plugins])

    def run(self, command: str, *args: str) -> dict[str, Any]:
        """Run a ``helpers.py`` command in a new Python process (sqlite only: memory dies with us)."""
        assert self.backend == "sqlite", "only a durable backend can be shared with another process"
        config_file = self.tmp_path / "config.json"
        config_file.write_text(json.dumps(self.config))
        done = subprocess.run(
            [sys.executable, str(HELPERS), command, str(config_file), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def place(backend_config: dict[str, Any], tmp_path: Path) -> Place:
    if backend_config["store"]["backend"] == "memory":
        config = {**backend_config, "plugins": {"disable": ["memory"]}}
        return Place(config, tmp_path, (SharedMemory(),))
    return Place(backend_config, tmp_path)


@pytest.fixture
def handle(place: Place) -> Iterator[lash.Lash]:
    with place.open() as opened:
        yield opened


@attrs.define
class CommitSpy:
    """Records every :class:`Commit` a session's store receives, and what it answered."""

    commits: list[Commit] = attrs.Factory(list)
    results: list[CommitResult] = attrs.Factory(list)

    @property
    def last(self) -> Commit:
        return self.commits[-1]


@pytest.fixture
def spy() -> Callable[[lash.Session], CommitSpy]:
    """``spy(session)`` wraps the session's store so that every commit it receives is recorded."""

    def attach(session: lash.Session) -> CommitSpy:
        record = CommitSpy()
        store = session.store
        original = store.commit

        def commit(commit: Commit) -> CommitResult:
            record.commits.append(commit)
            result = original(commit)
            record.results.append(result)
            return result

        store.commit = commit  # type: ignore[method-assign]
        return record

    return attach
