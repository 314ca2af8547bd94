"""The blob envelope: compression profiles, content addressing, tamper and version checks."""

from __future__ import annotations

import hashlib
import random

import msgpack
import pytest

from lash import codec
from lash.blobs import ENVELOPE_VERSION, BlobProfile, compress_node_record, open_envelope, seal
from lash.errors import BlobIntegrityError, SchemaVersionError
from lash.model import BlobHint, BlobKind, blob_ref_for

TEXT = b"all work and no play makes jack a dull boy. " * 300  # ~13 KiB, compresses well
COMPRESSIBLE = (BlobHint.COMPRESSIBLE,)


def compression(content: bytes, profile: BlobProfile, hints: tuple[str, ...] = COMPRESSIBLE) -> str:
    return msgpack.unpackb(seal(content, BlobKind.GENERIC, hints, profile))["compression"]


@pytest.mark.parametrize("size", [0, 1024, 4096, len(TEXT)])
def test_low_latency_never_compresses(size: int) -> None:
    assert compression(TEXT[:size], BlobProfile.LOW_LATENCY) == "none"


def test_balanced_compresses_hinted_blobs_of_at_least_4_kib() -> None:
    assert compression(TEXT[:4096], BlobProfile.BALANCED) == "zlib"
    assert compression(TEXT[:4095], BlobProfile.BALANCED) == "none"


def test_balanced_leaves_unhinted_blobs_uncompressed() -> None:
    assert compression(TEXT, BlobProfile.BALANCED, hints=()) == "none"
    assert compression(TEXT, BlobProfile.BALANCED, hints=(BlobHint.LARGE_PAYLOAD,)) == "none"


def test_compact_compresses_every_blob_of_at_least_1_kib() -> None:
    assert compression(TEXT[:1024], BlobProfile.COMPACT, hints=()) == "zlib"
    assert compression(TEXT[:1023], BlobProfile.COMPACT, hints=()) == "none"


def test_incompressible_content_is_stored_uncompressed() -> None:
    noise = random.Random(1).randbytes(8192)
    assert compression(noise, BlobProfile.COMPACT) == "none"


@pytest.mark.parametrize("profile", list(BlobProfile))
def test_envelope_round_trips_kind_hints_and_content(profile: BlobProfile) -> None:
    ref = blob_ref_for(TEXT)
    opened = open_envelope(ref, seal(TEXT, BlobKind.TOOL_STATE, COMPRESSIBLE, profile))
    assert (opened.kind, opened.hints, opened.content) == ("tool_state", ("compressible",), TEXT)


def test_ref_is_sha256_of_uncompressed_content() -> None:
    assert blob_ref_for(TEXT) == "sha256:" + hashlib.sha256(TEXT).hexdigest()


def _envelope(**changes: object) -> bytes:
    envelope = msgpack.unpackb(seal(TEXT, BlobKind.GENERIC, COMPRESSIBLE, BlobProfile.BALANCED))
    envelope.update(changes)
    return msgpack.packb(envelope, use_bin_type=True)


@pytest.mark.parametrize(
    "data",
    [
        _envelope(content=b"other content"),
        _envelope(compression="none"),  # zlib bytes read as plain content
        _envelope(compression="zlib", content=b"not zlib"),
        _envelope(compression="lz4"),
        _envelope(content="text, not bytes"),
        msgpack.packb(["not", "an", "envelope"]),
        b"\xc1 not msgpack",
    ],
    ids=["other-content", "wrong-compression", "bad-zlib", "unknown-compression", "str-content", "list", "garbage"],
)
def test_tampered_envelope_raises_blob_integrity_error(data: bytes) -> None:
    ref = blob_ref_for(TEXT)
    with pytest.raises(BlobIntegrityError) as info:
        open_envelope(ref, data)
    assert info.value.ref == ref


def test_envelope_with_newer_version_raises_schema_version_error() -> None:
    with pytest.raises(SchemaVersionError) as info:
        open_envelope(blob_ref_for(TEXT), _envelope(v=ENVELOPE_VERSION + 1))
    assert (info.value.found, info.value.supported) == (ENVELOPE_VERSION + 1, ENVELOPE_VERSION)


def test_balanced_stores_the_execution_state_uncompressed_and_compact_compresses_it() -> None:
    def stored(profile: BlobProfile) -> str:
        return msgpack.unpackb(seal(TEXT, BlobKind.EXECUTION_STATE, COMPRESSIBLE, profile))["compression"]

    assert (stored(BlobProfile.BALANCED), stored(BlobProfile.COMPACT)) == ("none", "zlib")


@pytest.mark.parametrize(
    ("profile", "size", "compressed"),
    [
        (BlobProfile.LOW_LATENCY, 4096, False),
        (BlobProfile.BALANCED, 2047, False),
        (BlobProfile.BALANCED, 2048, True),
        (BlobProfile.COMPACT, 255, False),
        (BlobProfile.COMPACT, 256, True),
    ],
)
def test_node_records_are_compressed_from_the_profile_threshold(
    profile: BlobProfile, size: int, compressed: bool
) -> None:
    record = TEXT[:size]
    stored = compress_node_record(record, profile)
    assert stored.startswith(codec.COMPRESSED_MAGIC) is compressed
    assert len(stored) < size if compressed else stored == record
