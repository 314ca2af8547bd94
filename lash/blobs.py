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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import attrs

from lash.codec import compress_record, pack, unpack
from lash.errors import BlobIntegrityError, CorruptRecordError, SchemaVersionError
from lash.model import BlobHint, BlobKind, BlobRef, blob_ref_for, is_blob_ref

ENVELOPE_VERSION = 1


class BlobProfile(enum.StrEnum):
    """When blobs are compressed."""

    LOW_LATENCY = "low_latency"
    """Never compress."""
    BALANCED = "balanced"
    """Compress lasting blobs hinted ``compressible`` of at least 4 KiB, and node records of at least
    2 KiB, at zlib's fastest level (the default). The execution state, replaced by every commit, is
    stored as it is: compressing it cost a third of a commit and saved no lasting bytes."""
    COMPACT = "compact"
    """Compress every blob of at least 1 KiB and node records of at least 256 bytes, at zlib's default
    level (smaller, slower)."""


ZLIB_LEVELS: dict[BlobProfile, int] = {BlobProfile.BALANCED: 1, BlobProfile.COMPACT: 6}
"""zlib level per profile. Level 1 compresses an agent's ~8 KiB execution state twice as fast
as level 6 (the price of every commit) for about 4% more bytes; ``compact`` pays for the rest."""


RECORD_COMPRESSION: dict[BlobProfile, tuple[int, int]] = {
    BlobProfile.BALANCED: (1, 2048),
    BlobProfile.COMPACT: (6, 256),
}
"""zlib level and minimum size of the node records a backend compresses, per profile.

Messages are most of what a session keeps and compress about 2x, but every resume decompresses
its whole path (~10 µs a record): ``balanced`` compresses only the long records, where the bytes
are, so a 1,000-turn resume stays within 3x of reading the rows raw (see ``benchmarks/``)."""


def should_compress(profile: BlobProfile, size: int, hints: Collection[str], kind: str = BlobKind.GENERIC) -> bool:
    """Whether ``profile`` compresses a blob of ``size`` bytes with ``hints`` and ``kind``."""
    if profile is BlobProfile.LOW_LATENCY:
        return False
    if profile is BlobProfile.COMPACT:
        return size >= 1024
    return BlobHint.COMPRESSIBLE in hints and size >= 4096 and kind != BlobKind.EXECUTION_STATE


def compress_node_record(data: bytes, profile: BlobProfile) -> bytes:
    """The bytes a backend stores for the node record ``data`` under ``profile`` (see :data:`RECORD_COMPRESSION`).

    Compressed records start with :data:`lash.codec.COMPRESSED_MAGIC`, which :func:`lash.codec.unpack`
    expands, so they read back through every code path, whatever profile the reader was opened with.
    """
    setting = RECORD_COMPRESSION.get(profile)
    if setting is None or len(data) < setting[1]:
        return data
    return compress_record(data, setting[0])


def seal(content: bytes, kind: str, hints: Collection[str], profile: BlobProfile) -> bytes:
    """The envelope bytes that store ``content``."""
    compression = "none"
    body = content
    if should_compress(profile, len(content), hints, kind):
        packed = zlib.compress(content, ZLIB_LEVELS[profile])
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


def open_envelope(ref: str, data: bytes, ref_for: Callable[[bytes], str] = blob_ref_for) -> OpenedEnvelope:
    """Decode and verify envelope bytes stored under ``ref`` (``ref_for``: how content maps to its ref)."""
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
    if ref_for(body) != ref:
        raise BlobIntegrityError(ref)
    kind, hints = env.get("kind", BlobKind.GENERIC), env.get("hints", ())
    if not isinstance(kind, str) or not isinstance(hints, list | tuple) or not all(isinstance(h, str) for h in hints):
        raise BlobIntegrityError(ref, "envelope kind or hints are damaged")
    return OpenedEnvelope(kind, tuple(hints), body)


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

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        """Delete ``refs``; returns how many were deleted.

        With ``older_than`` (epoch seconds), delete only blobs whose ``stored_at`` is at or
        before it, checked as close to the delete as the storage allows (in the same SQL
        statement; S3 re-reads each object's age just before its batch), so that a blob a
        commit reused after the collector listed it survives.
        """
        ...

    def list(self) -> Iterator[StoredBlob]:
        """Every stored blob."""
        ...


@attrs.frozen
class BlobWrite:
    """One blob to store: its content, kind and hints (an item of :meth:`EnvelopeBlobStore.put_many`)."""

    data: bytes
    kind: str = BlobKind.GENERIC
    hints: tuple[str, ...] = ()


def _content(data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"blob data must be bytes, not {type(data).__name__}")
    return bytes(data)


def content_ref(blobs: BlobStore) -> Callable[[bytes], BlobRef]:
    """How ``blobs`` addresses content: its ``ref_for`` (keyed under encryption), else plain SHA-256."""
    return getattr(blobs, "ref_for", blob_ref_for)


def put_all(blobs: BlobStore, writes: Sequence[BlobWrite]) -> list[BlobRef]:
    """Store every write in ``blobs``, all at once when the store offers ``put_many``."""
    put_many = getattr(blobs, "put_many", None)
    if put_many is not None:
        return put_many(writes)
    return [blobs.put(w.data, w.kind, w.hints) for w in writes]


class EnvelopeBlobStore:
    """A :class:`BlobStore` over raw :class:`BlobStorage`: envelopes, compression, hashing."""

    def __init__(self, storage: BlobStorage, profile: BlobProfile | str = BlobProfile.BALANCED) -> None:
        self.storage = storage
        self.profile = BlobProfile(profile)

    def evolve(
        self, *, storage: BlobStorage | None = None, profile: BlobProfile | str | None = None
    ) -> EnvelopeBlobStore:
        """This store's rules (envelope, hashing, encryption) over other storage or with another profile."""
        return EnvelopeBlobStore(storage or self.storage, profile or self.profile)

    # The three rules every read and write goes through; lash.encryption overrides them.

    def ref_for(self, data: bytes) -> BlobRef:
        """The ref ``data`` is stored under."""
        return blob_ref_for(data)

    def _seal(self, ref: BlobRef, data: bytes, kind: str, hints: Collection[str]) -> bytes:
        return seal(data, kind, hints, self.profile)

    def _open(self, ref: BlobRef, raw: bytes) -> OpenedEnvelope:
        return open_envelope(ref, raw)

    def put(self, data: bytes, kind: str = BlobKind.GENERIC, hints: Collection[str] = ()) -> BlobRef:
        data = _content(data)
        ref = self.ref_for(data)
        self.storage.write(ref, self._seal(ref, data, kind, hints))
        return ref

    def get(self, ref: BlobRef) -> bytes | None:
        ref = check_ref(ref)
        raw = self.storage.read(ref)
        return None if raw is None else self._open(ref, raw).content

    def get_envelope(self, ref: BlobRef) -> OpenedEnvelope | None:
        """The verified envelope of ``ref`` (kind, hints, content), or None."""
        ref = check_ref(ref)
        raw = self.storage.read(ref)
        return None if raw is None else self._open(ref, raw)

    def put_many(self, writes: Sequence[BlobWrite]) -> list[BlobRef]:
        """:meth:`put` each write, concurrently when the storage offers ``write_many``.

        A storage whose requests cost a network round trip (S3) implements
        ``write_many(envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]`` to send them
        at once; others are written one after the other, inside the caller's transaction.
        """
        envelopes = self.seal_all(writes)
        refs = [ref for ref, _ in envelopes]
        write_many = getattr(self.storage, "write_many", None)
        if write_many is not None:
            write_many(envelopes)
        else:
            for ref, envelope in envelopes:
                self.storage.write(ref, envelope)
        return refs

    def seal_all(self, writes: Sequence[BlobWrite]) -> list[tuple[BlobRef, bytes]]:
        """The ref and envelope bytes of each write: all a put does but the storage call (also for async storage)."""
        envelopes = []
        for write in writes:
            data = _content(write.data)
            ref = self.ref_for(data)
            envelopes.append((ref, self._seal(ref, data, write.kind, write.hints)))
        return envelopes

    def open_stored(self, ref: BlobRef, raw: bytes) -> OpenedEnvelope:
        """The verified envelope of ``raw``, as read from storage under ``ref`` (also for async storage)."""
        return self._open(ref, raw)

    def has(self, ref: BlobRef) -> bool:
        return self.storage.exists(check_ref(ref))

    def delete(self, refs: Iterable[BlobRef], *, older_than: float | None = None) -> int:
        """Delete ``refs``; with ``older_than``, only those stored at or before it (see :class:`BlobStorage`)."""
        checked = [check_ref(r) for r in refs]
        if older_than is None:
            return self.storage.delete(checked)
        return self.storage.delete(checked, older_than=older_than)

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
