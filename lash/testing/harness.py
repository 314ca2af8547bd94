"""The two fixtures the model-based and fault-injection suites need: fresh backends, and reopening one.

Unlike :class:`lash.testing.BackendTests`, which gets one backend per test, these suites
run many sequences per test and each needs its own empty backend, so a backend author
provides a *factory* and, for durable backends, a way to reopen a backend on the same
storage (which proves that what was acknowledged reached the storage).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lash.store import Backend

BackendFactory = Callable[[], Backend]
"""Builds a fresh, empty backend whose GC grace period is zero."""

Reopen = Callable[[Backend], Backend]
"""Closes a backend and returns a new one over the same storage (identity for in-memory backends)."""


def same_backend(backend: Backend) -> Backend:
    """The :data:`Reopen` of a backend whose data lives only in the object itself."""
    return backend


class BackendFactoryFixtures:
    """Override ``backend_factory`` and, for durable backends, :meth:`reopen` (or the ``reopen_backend`` fixture)."""

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        """A callable returning a fresh, empty backend (GC grace period zero) on each call."""
        raise NotImplementedError("override the `backend_factory` fixture to return a factory of fresh backends")

    def reopen(self, backend: Backend) -> Backend:
        """Close ``backend`` and build a new one over the same storage; the default keeps it.

        Like :meth:`lash.testing.BackendTests.reopen`. Override it, or override the
        ``reopen_backend`` fixture when reopening needs other fixtures.
        """
        return same_backend(backend)

    @pytest.fixture
    def reopen_backend(self) -> Reopen:
        """The :data:`Reopen` the suites call: :meth:`reopen` unless overridden."""
        return self.reopen
