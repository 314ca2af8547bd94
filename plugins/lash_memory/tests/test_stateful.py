"""The memory backend matches the reference model through random operation sequences."""

import pytest
from lash_memory import MemoryBackend

from lash.testing.harness import BackendFactory
from lash.testing.stateful import BackendStateMachineTests


class TestMemoryBackendStateful(BackendStateMachineTests):
    state_machine_budget = 0.2  # of the profile's max_examples: 10 sequences under `ci`, 400 under `thorough`

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return lambda: MemoryBackend(gc_grace_seconds=0)
