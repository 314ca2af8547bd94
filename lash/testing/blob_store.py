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
import random
from collections.abc import Callable

import pytest

from lash.blobs import BlobProfile, BlobStore, EnvelopeBlobStore, seal
from lash.errors import BlobIntegrityError, LashError
from lash.model import BlobHint, BlobKind, BlobRef

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


class BlobStoreTests:
    """Every promise of :class:`lash.blobs.BlobStore`. Override the ``blob_store`` fixture."""

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
        return EnvelopeBlobStore(blob_store.storage, profile)

    # -- content addressing -------------------------------------------------------------

    def test_ref_is_sha256_of_uncompressed_content(self, blob_store: BlobStore) -> None:
        data = b"x" * 10_000
        ref = blob_store.put(data, BlobKind.GENERIC, (BlobHint.COMPRESSIBLE,))
        assert ref == "sha256:" + hashlib.sha256(data).hexdigest()

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
        assert ref == "sha256:" + hashlib.sha256(data).hexdigest()
        assert writer.get(ref) == data
        assert blob_store.get(ref) == data  # any profile reads what another wrote

    def test_same_content_under_two_profiles_is_one_blob(self, blob_store: BlobStore) -> None:
        data = b"compress me " * 1000
        refs = {
            self.with_profile(blob_store, profile).put(data, hints=(BlobHint.COMPRESSIBLE,)) for profile in BlobProfile
        }
        assert len(refs) == 1
        assert list(blob_store.refs()).count(refs.pop()) == 1
