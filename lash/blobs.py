"""Content-addressed blobs: the envelope, compression profiles and the BlobStore contract.

A blob's ref is the SHA-256 of its *uncompressed* content, so the same bytes are stored
once whatever the profile. Stored bytes are a msgpack envelope
``{v, kind, hints, compression, content}``. Backends provide only :class:`BlobStorage`
(raw get/put of envelopes by ref); :class:`EnvelopeBlobStore` adds the envelope,
compression and hash verification once, for all of them.
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Collection, Iterable, Iterator
from typing import Protocol, runtime_checkable

import attrs

from lash.codec import pack, unpack
from lash.errors import BlobIntegrityError, CorruptRecordError, SchemaVersionError
from lash.model import BlobHint, BlobKind, BlobRef, blob_ref_for, is_blob_ref

ENVELOPE_VERSION = 1


class BlobProfile(enum.StrEnum):
    """When blobs are compressed."""

    LOW_LATENCY = "low_latency"
    """Never compress."""
    BALANCED = "balanced"
    """Compress blobs hinted ``compressible`` of at least 4 KiB (the default)."""
    COMPACT = "compact"
    """Compress every blob of at least 1 KiB."""


def should_compress(profile: BlobProfile, size: int, hints: Collection[str]) -> bool:
    """Whether ``profile`` compresses a blob of ``size`` bytes with ``hints``."""
    if profile is BlobProfile.LOW_LATENCY:
        return False
    if profile is BlobProfile.COMPACT:
        return size >= 1024
    return BlobHint.COMPRESSIBLE in hints and size >= 4096


def seal(content: bytes, kind: str, hints: Collection[str], profile: BlobProfile) -> bytes:
    """The envelope bytes that store ``content``."""
    compression = "none"
    body = content
    if should_compress(profile, len(content), hints):
        packed = zlib.compress(content, 6)
        if len(packed) < len(content):
            compression, body = "zlib", packed
    envelope = {
        "v": ENVELOPE_VERSION,
        "kind": str(kind),
        "hints": [str(h) for h in hints],
        "compression": compression,
        "content": body,
    }
    return pack(envelope)


@attrs.frozen
class OpenedEnvelope:
    """A decoded envelope."""

    kind: str
    hints: tuple[str, ...]
    content: bytes


def open_envelope(ref: str, data: bytes) -> OpenedEnvelope:
    """Decode and verify envelope bytes stored under ``ref``."""
    try:
        env = unpack(data, f"blob {ref}")
    except CorruptRecordError as exc:
        raise BlobIntegrityError(ref, "envelope is not valid msgpack") from exc
    if not isinstance(env, dict) or not isinstance(env.get("v"), int):
        raise BlobIntegrityError(ref, "not a lash blob envelope")
    if env["v"] > ENVELOPE_VERSION:
        raise SchemaVersionError(env["v"], ENVELOPE_VERSION, f"blob envelope {ref}")
    body = env.get("content")
    compression = env.get("compression")
    if not isinstance(body, bytes):
        raise BlobIntegrityError(ref, "envelope has no content bytes")
    if compression == "zlib":
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise BlobIntegrityError(ref, f"zlib content does not decompress ({exc})") from exc
    elif compression != "none":
        raise BlobIntegrityError(ref, f"unknown compression {compression!r}")
    if blob_ref_for(body) != ref:
        raise BlobIntegrityError(ref)
    return OpenedEnvelope(str(env.get("kind", BlobKind.GENERIC)), tuple(env.get("hints", ())), body)


def check_ref(ref: object) -> BlobRef:
    """``ref`` if it is a well-formed ``sha256:`` ref, else a lash error."""
    if not is_blob_ref(ref):
        raise BlobIntegrityError(str(ref), "not a valid blob ref (expected sha256:<64 hex>)")
    return ref  # type: ignore[return-value]


@runtime_checkable
class BlobStore(Protocol):
    """The content-addressed blob contract every blob store meets."""

    def put(self, data: bytes, kind: str = BlobKind.GENERIC, hints: Collection[str] = ()) -> BlobRef:
        """Store ``data`` (idempotent: the same bytes give the same ref and are stored once)."""
        ...

    def get(self, ref: BlobRef) -> bytes | None:
        """The content of ``ref`` or None; raises :class:`BlobIntegrityError` on a hash mismatch."""
        ...

    def has(self, ref: BlobRef) -> bool:
        """Whether ``ref`` is stored."""
        ...

    def delete(self, refs: Iterable[BlobRef]) -> int:
        """Delete ``refs``; returns how many existed."""
        ...

    def refs(self) -> Iterator[BlobRef]:
        """Every stored ref."""
        ...


@attrs.frozen
class StoredBlob:
    """A raw listing row: a ref and when it was first stored (epoch seconds, None if unknown)."""

    ref: BlobRef
    stored_at: float | None = None


class BlobStorage(Protocol):
    """Raw envelope storage a backend provides; lash adds envelopes and verification."""

    def read(self, ref: BlobRef) -> bytes | None:
        """The stored envelope bytes of ``ref``, or None."""
        ...

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        """Store ``envelope`` under ``ref`` unless present; True when it was new.

        Writing a ref that is already present must refresh its ``stored_at`` so that a
        collector with a grace period does not delete a blob a new commit reuses.
        """
        ...

    def exists(self, ref: BlobRef) -> bool:
        """Whether ``ref`` is stored."""
        ...

    def delete(self, refs: Collection[BlobRef]) -> int:
        """Delete ``refs``; returns how many existed."""
        ...

    def list(self) -> Iterator[StoredBlob]:
        """Every stored blob."""
        ...


class EnvelopeBlobStore:
    """A :class:`BlobStore` over raw :class:`BlobStorage`: envelopes, compression, hashing."""

    def __init__(self, storage: BlobStorage, profile: BlobProfile | str = BlobProfile.BALANCED) -> None:
        self.storage = storage
        self.profile = BlobProfile(profile)

    def put(self, data: bytes, kind: str = BlobKind.GENERIC, hints: Collection[str] = ()) -> BlobRef:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        ref = blob_ref_for(data)
        self.storage.write(ref, seal(data, kind, hints, self.profile))
        return ref

    def get(self, ref: BlobRef) -> bytes | None:
        ref = check_ref(ref)
        raw = self.storage.read(ref)
        return None if raw is None else open_envelope(ref, raw).content

    def get_envelope(self, ref: BlobRef) -> OpenedEnvelope | None:
        """The verified envelope of ``ref`` (kind, hints, content), or None."""
        ref = check_ref(ref)
        raw = self.storage.read(ref)
        return None if raw is None else open_envelope(ref, raw)

    def has(self, ref: BlobRef) -> bool:
        return self.storage.exists(check_ref(ref))

    def delete(self, refs: Iterable[BlobRef]) -> int:
        return self.storage.delete([check_ref(r) for r in refs])

    def refs(self) -> Iterator[BlobRef]:
        return (b.ref for b in self.storage.list())


def collectable(
    blobs: Iterable[StoredBlob], roots: Collection[str], grace_seconds: float, now: float | None = None
) -> tuple[list[BlobRef], int]:
    """The refs a collector may delete, and how many blobs it keeps.

    A blob is deleted when it is not a root and is older than ``grace_seconds`` (a blob of
    unknown age counts as old), so that blobs uploaded by a commit still in flight survive.
    """
    cutoff = (time.time() if now is None else now) - grace_seconds
    doomed: list[BlobRef] = []
    kept = 0
    for blob in blobs:
        young = grace_seconds > 0 and blob.stored_at is not None and blob.stored_at > cutoff
        if blob.ref in roots or young:
            kept += 1
        else:
            doomed.append(blob.ref)
    return doomed, kept
