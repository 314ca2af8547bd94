"""The content-addressed blob store contract, as tests any blob store can inherit.

Subclass :class:`BlobStoreTests` and override the ``blob_store`` fixture::

    class TestMyBlobStore(BlobStoreTests):
        @pytest.fixture
        def blob_store(self, tmp_path):
            return MyBlobStore(tmp_path)

Two hooks touch storage behind the store's back; their defaults work for an
:class:`~lash.blobs.EnvelopeBlobStore` (the store every built-in backend uses):
:meth:`BlobStoreTests.tamper_stored_blob` and :meth:`BlobStoreTests.with_profile`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any, ClassVar

import pytest

from lash.blobs import BlobProfile, BlobStorage, BlobStore, EnvelopeBlobStore, StoredBlob, seal
from lash.errors import BlobIntegrityError, LashError
from lash.model import BlobHint, BlobKind, BlobRef, Checkpoint, Head, SessionConfig
from lash.store import collect_shared_blobs

TAMPERED_CONTENT = b"bytes that do not hash to the ref they are stored under"

Tamper = Callable[[BlobRef], None]


def tamper_envelope_store(blobs: BlobStore, ref: BlobRef) -> None:
    """Overwrite ``ref`` with a well-formed envelope whose content does not match the ref.

    Works when ``blobs`` is an :class:`EnvelopeBlobStore` whose raw storage offers
    ``tamper(ref, envelope)``; otherwise skips, telling the author which hook to override.
    """
    storage = getattr(blobs, "storage", None)
    if not isinstance(blobs, EnvelopeBlobStore) or not callable(getattr(storage, "tamper", None)):
        pytest.skip(
            f"cannot tamper with blobs of {type(blobs).__name__}: override tamper_blob()/tamper_stored_blob() "
            "in your test class to overwrite a stored blob's bytes behind the store's back"
        )
    storage.tamper(ref, seal(TAMPERED_CONTENT, BlobKind.GENERIC, (), BlobProfile.LOW_LATENCY))


_TEXT = b"the quick brown fox jumps over the lazy dog. " * 200  # ~9 KiB, compresses well
PAYLOADS: dict[str, bytes] = {
    "empty": b"",
    "small": b"tiny",
    "2kib-text": _TEXT[:2048],
    "9kib-text": _TEXT,
    "8kib-random": random.Random(0).randbytes(8192),  # does not compress
}
"""Sizes around the profile thresholds (1 KiB, 4 KiB), compressible and not."""


class RaceAfterListing:
    """A :class:`BlobStorage` that lets a "concurrent commit" act between a collector's listing and its delete.

    ``after_list`` runs when the listing is exhausted, ``before_delete`` just before the
    delete request: the moments a commit can hit a shared-store collection, made deterministic.
    """

    def __init__(
        self,
        inner: BlobStorage,
        *,
        after_list: Callable[[], object] = lambda: None,
        before_delete: Callable[[], object] = lambda: None,
    ) -> None:
        self._inner = inner
        self._after_list = after_list
        self._before_delete = before_delete

    def read(self, ref: BlobRef) -> bytes | None:
        return self._inner.read(ref)

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        return self._inner.write(ref, envelope)

    def exists(self, ref: BlobRef) -> bool:
        return self._inner.exists(ref)

    def list(self) -> Iterator[StoredBlob]:
        yield from self._inner.list()
        self._after_list()

    def delete(self, refs: Collection[BlobRef], **kwargs: Any) -> int:
        self._before_delete()
        return self._inner.delete(refs, **kwargs)


def placeholder_head(root: BlobRef) -> Head:
    """A head whose only blob is ``root``: a commit that made ``root`` reachable."""
    return Head(1, SessionConfig(), None, root, Checkpoint())


class BlobStoreTests:
    """Every promise of :class:`lash.blobs.BlobStore`. Override the ``blob_store`` fixture."""

    stored_at_resolution: ClassVar[float] = 0.0
    """How coarse the storage's ``stored_at`` is, in seconds (S3's LastModified: 1)."""

    @pytest.fixture
    def blob_store(self) -> BlobStore:
        """A fresh, empty blob store. Subclasses must override this fixture."""
        raise NotImplementedError("override the `blob_store` fixture to return a fresh, empty blob store")

    @pytest.fixture
    def tamper(self, blob_store: BlobStore) -> Tamper:
        """``tamper(ref)`` overwrites a stored blob's bytes behind the store's back."""
        return functools.partial(self.tamper_stored_blob, blob_store)

    def tamper_stored_blob(self, blob_store: BlobStore, ref: BlobRef) -> None:
        """Overwrite the stored bytes of ``ref`` so that they no longer match it. Override if needed."""
        tamper_envelope_store(blob_store, ref)

    def with_profile(self, blob_store: BlobStore, profile: BlobProfile) -> BlobStore:
        """A view of ``blob_store``'s storage that writes with ``profile``. Override if needed."""
        if not isinstance(blob_store, EnvelopeBlobStore):
            pytest.skip(f"override with_profile() to build {type(blob_store).__name__} with another profile")
        return blob_store.evolve(profile=profile)

    def expected_ref(self, blob_store: BlobStore, data: bytes) -> BlobRef:
        """The ref ``put(data)`` must return: the SHA-256 of the content, or its keyed HMAC under encryption."""
        keyring = getattr(blob_store, "keyring", None)
        if keyring is not None:  # lash.encryption: HMAC-SHA256 under the write key's ref key
            from lash.encryption import derive_key

            ref_key = derive_key(keyring.write_key, "blob-ref")
            return BlobRef("sha256:" + hmac.new(ref_key, data, hashlib.sha256).hexdigest())
        return BlobRef("sha256:" + hashlib.sha256(data).hexdigest())

    # -- content addressing -------------------------------------------------------------

    def test_ref_is_sha256_of_uncompressed_content(self, blob_store: BlobStore) -> None:
        data = b"x" * 10_000
        ref = blob_store.put(data, BlobKind.GENERIC, (BlobHint.COMPRESSIBLE,))
        assert ref == self.expected_ref(blob_store, data)

    def test_put_is_idempotent_and_stores_once(self, blob_store: BlobStore) -> None:
        first = blob_store.put(b"same bytes")
        second = blob_store.put(b"same bytes", BlobKind.EXECUTION_STATE)
        assert first == second
        assert list(blob_store.refs()).count(first) == 1

    def test_get_returns_what_was_put(self, blob_store: BlobStore) -> None:
        ref = blob_store.put(b"\x00\x01 binary \xff")
        assert blob_store.get(ref) == b"\x00\x01 binary \xff"

    def test_get_of_unknown_ref_is_none(self, blob_store: BlobStore) -> None:
        assert blob_store.get(BlobRef("sha256:" + "0" * 64)) is None

    def test_get_of_malformed_ref_raises_lash_error(self, blob_store: BlobStore) -> None:
        with pytest.raises(LashError):
            blob_store.get(BlobRef("not-a-ref"))

    def test_get_verifies_content_against_ref(self, blob_store: BlobStore, tamper: Tamper) -> None:
        ref = blob_store.put(b"original content")
        tamper(ref)
        with pytest.raises(BlobIntegrityError) as info:
            blob_store.get(ref)
        assert info.value.ref == ref

    # -- has / delete / refs ------------------------------------------------------------

    def test_has_reports_stored_refs_only(self, blob_store: BlobStore) -> None:
        ref = blob_store.put(b"present")
        assert blob_store.has(ref)
        assert not blob_store.has(BlobRef("sha256:" + "1" * 64))

    def test_refs_lists_every_stored_blob(self, blob_store: BlobStore) -> None:
        refs = {blob_store.put(f"blob {i}".encode()) for i in range(5)}
        assert set(blob_store.refs()) == refs

    def test_delete_removes_only_given_refs_and_counts_existing(self, blob_store: BlobStore) -> None:
        doomed = blob_store.put(b"doomed")
        kept = blob_store.put(b"kept")
        unknown = BlobRef("sha256:" + "2" * 64)
        assert blob_store.delete([doomed, unknown]) == 1
        assert not blob_store.has(doomed)
        assert blob_store.get(doomed) is None
        assert set(blob_store.refs()) == {kept}
        assert blob_store.delete([doomed]) == 0

    # -- compression profiles -----------------------------------------------------------

    @pytest.mark.parametrize("profile", list(BlobProfile))
    @pytest.mark.parametrize("payload", list(PAYLOADS))
    def test_every_profile_round_trips(self, blob_store: BlobStore, profile: BlobProfile, payload: str) -> None:
        data = PAYLOADS[payload]
        writer = self.with_profile(blob_store, profile)
        ref = writer.put(data, BlobKind.TOOL_STATE, (BlobHint.COMPRESSIBLE, BlobHint.LARGE_PAYLOAD))
        assert ref == self.expected_ref(blob_store, data)
        assert writer.get(ref) == data
        assert blob_store.get(ref) == data  # any profile reads what another wrote

    def test_same_content_under_two_profiles_is_one_blob(self, blob_store: BlobStore) -> None:
        data = b"compress me " * 1000
        refs = {
            self.with_profile(blob_store, profile).put(data, hints=(BlobHint.COMPRESSIBLE,)) for profile in BlobProfile
        }
        assert len(refs) == 1
        assert list(blob_store.refs()).count(refs.pop()) == 1

    # -- collection of a store shared by many sessions ----------------------------------

    @staticmethod
    def _envelope_store(blob_store: BlobStore) -> EnvelopeBlobStore:
        if not isinstance(blob_store, EnvelopeBlobStore):
            pytest.skip(f"the shared-store GC tests need an EnvelopeBlobStore, not {type(blob_store).__name__}")
        return blob_store

    def test_gc_keeps_a_blob_a_commit_reuses_between_listing_and_delete(self, blob_store: BlobStore) -> None:
        """Writing stored content restarts its age, and the collector re-checks ages as it deletes.

        A store that refreshes only old blobs (S3's ``refresh_after_seconds``) must be built
        to refresh at once for this test.
        """
        store = self._envelope_store(blob_store)
        catalogue = b"a tool catalogue no head references yet, reused by the next commit"
        reused = store.put(catalogue)
        garbage = store.put(b"garbage no commit will reference")

        def commit_reuses_catalogue() -> None:
            time.sleep(self.stored_at_resolution + 0.01)
            store.put(catalogue)

        racing = store.evolve(storage=RaceAfterListing(store.storage, before_delete=commit_reuses_catalogue))
        report = collect_shared_blobs(racing, lambda: (), grace_seconds=0)
        assert store.get(reused) == catalogue
        assert not store.has(garbage)
        assert report.deleted_blob_count == 1

    def test_gc_keeps_a_blob_whose_commit_lands_during_the_listing(self, blob_store: BlobStore) -> None:
        store = self._envelope_store(blob_store)
        landed: list[Head] = []
        manifest = store.put(b"the manifest of a commit whose head lands while the collector lists")
        garbage = store.put(b"garbage no commit will reference")

        def commit_lands() -> None:
            landed.append(placeholder_head(manifest))

        racing = store.evolve(storage=RaceAfterListing(store.storage, after_list=commit_lands))
        report = collect_shared_blobs(racing, lambda: list(landed), grace_seconds=0)
        assert store.has(manifest)
        assert not store.has(garbage)
        assert (report.root_count, report.deleted_blob_count) == (1, 1)
