"""The async faces of a blob store, for the store rules driven with ``await``.

:class:`~lash.store_rules.SessionRules` asks its blob face for ``put_all``, ``get``,
``listing`` and ``delete``. Over a backend's :class:`AsyncBlobStorage` (lash-postgres's
blob table), :class:`AsyncEnvelopeBlobCalls` seals and opens envelopes on the loop (the
rules of the sync :class:`~lash.blobs.EnvelopeBlobStore`, encryption included) and awaits
only the storage. Any other blob store (S3 or a file system under ``[blobs]``) gets
:class:`ThreadedBlobCalls`: each call in the handle's worker pool, never on the loop thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

from lash.blobs import BlobStore, BlobWrite, EnvelopeBlobStore, StoredBlob, check_ref
from lash.model import BlobRef
from lash.store_rules import BlobCalls

T = TypeVar("T")


class AsyncBlobStorage(Protocol):
    """:class:`lash.blobs.BlobStorage` with awaitable methods (``write_many`` sends a batch at once)."""

    async def read(self, ref: BlobRef) -> bytes | None: ...

    async def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]: ...

    async def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int: ...

    async def list(self) -> list[StoredBlob]: ...


class AsyncEnvelopeBlobCalls:
    """The blob face over async raw storage: ``store``'s envelope rules, ``storage``'s I/O."""

    def __init__(self, store: EnvelopeBlobStore, storage: AsyncBlobStorage) -> None:
        self.store = store
        self.storage = storage
        self.ref_for: Callable[[bytes], BlobRef] = store.ref_for

    async def put_all(self, writes: Sequence[BlobWrite]) -> list[BlobRef]:
        envelopes = self.store.seal_all(writes)
        await self.storage.write_many(envelopes)
        return [ref for ref, _ in envelopes]

    async def get(self, ref: BlobRef) -> bytes | None:
        ref = check_ref(ref)
        raw = await self.storage.read(ref)
        return None if raw is None else self.store.open_stored(ref, raw).content

    async def listing(self) -> list[StoredBlob]:
        return await self.storage.list()

    async def delete(self, refs: Collection[BlobRef], older_than: float | None = None) -> int:
        checked = [check_ref(r) for r in refs]
        return await self.storage.delete(checked, older_than=older_than)


class ThreadedBlobCalls:
    """The blob face of a synchronous blob store: each call in ``executor``."""

    def __init__(self, blobs: BlobStore, executor: Executor) -> None:
        self.calls = BlobCalls(blobs)
        self.ref_for = self.calls.ref_for
        self._executor = executor

    async def _in_pool(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    async def put_all(self, writes: Sequence[BlobWrite]) -> list[BlobRef]:
        return await self._in_pool(self.calls.put_all, writes)

    async def get(self, ref: BlobRef) -> bytes | None:
        return await self._in_pool(self.calls.get, ref)

    async def listing(self) -> list[StoredBlob]:
        return await self._in_pool(self.calls.listing)

    async def delete(self, refs: Collection[BlobRef], older_than: float | None = None) -> int:
        return await self._in_pool(self.calls.delete, refs, older_than)
