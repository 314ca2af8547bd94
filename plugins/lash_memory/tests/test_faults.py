"""A fault at any primitive operation of the memory backend leaves the old or the new state."""

import pytest
from lash_memory import MemoryBackend

from lash.testing.faults import FaultInjectionTests
from lash.testing.harness import BackendFactory


class TestMemoryBackendFaults(FaultInjectionTests):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return lambda: MemoryBackend(gc_grace_seconds=0)
