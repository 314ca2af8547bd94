"""The conformance suite every lash backend runs (this repo's and third parties').

Install ``lash[test]``, subclass :class:`BackendTests`, override the ``backend`` fixture
to build your backend (with a GC grace period of zero), and pytest collects every
contract test::

    import pytest
    from lash.testing import BackendTests

    class TestMyBackend(BackendTests):
        @pytest.fixture
        def backend(self, tmp_path):
            backend = MyBackend(path=tmp_path, gc_grace_seconds=0)
            yield backend
            backend.close()

        def reopen(self, backend):  # durable backends: prove the data survives
            backend.close()
            return MyBackend(path=backend.path, gc_grace_seconds=0)

A standalone blob store subclasses :class:`BlobStoreTests` and overrides ``blob_store``.
Add :class:`AsyncBackendTests` beside :class:`BackendTests` (``class TestMyBackend(BackendTests,
AsyncBackendTests)``) to run the contract through ``lash.aio``'s async face as well.
"""

import pytest

# Plain ``assert`` in the suite should report values like a test's own asserts do; pytest
# rewrites only modules registered before they are imported.
pytest.register_assert_rewrite(
    "lash.testing.blob_store",
    "lash.testing.base",
    "lash.testing.commits",
    "lash.testing.reads",
    "lash.testing.maintenance",
    "lash.testing.sessions",
    "lash.testing.aio",
    "lash.testing.stateful",
    "lash.testing.faults",
)

from lash.testing.aio import AsyncBackendTests  # noqa: E402
from lash.testing.backend import BackendTests  # noqa: E402
from lash.testing.blob_store import BlobStoreTests  # noqa: E402
from lash.testing.builders import SessionWriter, chain, event, message, usage  # noqa: E402
from lash.testing.faults import FaultInjectionTests, FaultPlan, faulty_store, sweep_faults  # noqa: E402
from lash.testing.stateful import (  # noqa: E402
    BackendStateMachine,
    BackendStateMachineTests,
    run_backend_state_machine,
)

__all__ = [
    "AsyncBackendTests",
    "BackendStateMachine",
    "BackendStateMachineTests",
    "BackendTests",
    "BlobStoreTests",
    "FaultInjectionTests",
    "FaultPlan",
    "SessionWriter",
    "chain",
    "event",
    "faulty_store",
    "message",
    "run_backend_state_machine",
    "sweep_faults",
    "usage",
]
