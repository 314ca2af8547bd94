""":class:`BackendTests`: the whole storage contract, for any :class:`lash.store.Backend`."""

from __future__ import annotations

from lash.testing.blob_store import BlobStoreTests
from lash.testing.commits import CommitTests
from lash.testing.maintenance import MaintenanceTests
from lash.testing.reads import ReadTests
from lash.testing.sessions import SessionTests


class BackendTests(CommitTests, ReadTests, MaintenanceTests, SessionTests, BlobStoreTests):
    """Every promise of the storage contract (DESIGN.md §3). Subclass it and override ``backend``.

    The ``backend`` fixture yields a fresh, empty backend and closes it afterwards. Build
    it with a GC grace period of zero (``gc_grace_seconds=0``): the GC tests expect every
    unreferenced blob to be collectable at once. The blob-store tests run against the
    blob store of a session (``store.blobs``).

    Hooks you may override: :meth:`reopen` (durable backends: close and build a new
    backend on the same storage) and :meth:`tamper_blob` (overwrite a stored blob's bytes
    behind the store's back; the default needs an
    :class:`~lash.blobs.EnvelopeBlobStore` whose storage has ``tamper(ref, envelope)``).
    """
