"""The SQLite backend matches the reference model through random operation sequences, reopened from disk."""

from __future__ import annotations

import pytest

from lash.testing.harness import BackendFactory, Reopen
from lash.testing.stateful import BackendStateMachineTests


class TestSqliteBackendStateful(BackendStateMachineTests):
    state_machine_budget = 0.1  # of the profile's max_examples: 5 sequences under `ci`, 200 under `thorough`

    @pytest.fixture
    def backend_factory(self, sqlite_backend_factory: BackendFactory) -> BackendFactory:
        return sqlite_backend_factory

    @pytest.fixture
    def reopen_backend(self, reopen_sqlite: Reopen) -> Reopen:
        return reopen_sqlite
