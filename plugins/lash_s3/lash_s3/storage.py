"""Raw blob envelopes as S3 objects: :class:`S3BlobStorage` implements lash's ``BlobStorage``.

Keys are ``<prefix>/sha256/<hex[:2]>/<hex>`` (``sha256/...`` without a prefix), so every
session and every host writing the same content shares one object. Envelopes, compression
and hash verification are added by :class:`lash.blobs.EnvelopeBlobStore`; this module only
moves bytes and turns S3 facts (404, LastModified) into the protocol's answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from lash.blobs import StoredBlob
from lash.model import BlobRef
from lash_s3.errors import s3_errors
from lash_s3.objects import DELETE_BATCH, S3Objects

_HEX = re.compile(r"[0-9a-f]{64}")


class S3BlobStorage:
    """Blob envelopes in one bucket under one prefix.

    ``client`` is a boto3 S3 client (thread-safe; its config carries retries and timeouts).
    ``refresh_after_seconds``: a write of an existing object older than this copies the
    object onto itself so its LastModified (the age a grace-period collector sees) restarts;
    keep it well below the backend's ``gc_grace_seconds``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, refresh_after_seconds: float = 600.0) -> None:
        self.client = client
        self.bucket = bucket
        self.objects = S3Objects(client, bucket)
        self.prefix = prefix.strip("/")
        self.refresh_after_seconds = float(refresh_after_seconds)
        self._root = f"{self.prefix}/sha256/" if self.prefix else "sha256/"

    def __repr__(self) -> str:
        return f"<S3BlobStorage s3://{self.bucket}/{self._root}>"

    def key(self, ref: BlobRef) -> str:
        """The object key of ``ref``."""
        digest = ref.removeprefix("sha256:")
        return f"{self._root}{digest[:2]}/{digest}"

    def _ref(self, key: str) -> BlobRef | None:
        """The ref stored under ``key``, or None for an object that is not a lash blob."""
        shard, _, digest = key.removeprefix(self._root).partition("/")
        if key.startswith(self._root) and _HEX.fullmatch(digest) and shard == digest[:2]:
            return BlobRef("sha256:" + digest)
        return None

    def read(self, ref: BlobRef) -> bytes | None:
        stored = self.objects.get(self.key(ref))
        return None if stored is None else stored.body

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        """Upload ``envelope`` unless the object exists (HEAD first: no body is sent twice).

        An existing object older than ``refresh_after_seconds`` is copied onto itself, which
        restarts its LastModified, so a collector's grace period protects a blob that a
        commit in flight reuses. Concurrent writers of one new ref both upload; the bytes
        decode to the same content, so the last upload winning is harmless.
        """
        key = self.key(ref)
        head = self.objects.head(key)
        if head is None:
            self.objects.put(key, envelope)
            return True
        if time.time() - head["LastModified"].timestamp() >= self.refresh_after_seconds:
            with s3_errors("CopyObject (refresh)", self.bucket, key):
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE",
                    Metadata=head.get("Metadata", {}),
                    ContentType=head.get("ContentType", "binary/octet-stream"),
                )
        return False

    def write_many(self, envelopes: Sequence[tuple[BlobRef, bytes]]) -> list[bool]:
        """:meth:`write` each ``(ref, envelope)`` on up to 8 threads: one commit's blobs in about one round trip."""
        return self.objects.map(lambda item: self.write(*item), envelopes)

    def exists(self, ref: BlobRef) -> bool:
        return self.objects.head(self.key(ref)) is not None

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        """Delete ``refs`` in ``DeleteObjects`` batches of at most 1,000 keys.

        S3 deletes missing keys silently, so each batch is HEADed first (concurrently): the
        count is exact, at one HEAD per ref. With ``older_than`` the HEAD also re-checks the
        age just before the batch is deleted, and an object whose LastModified is later (a
        commit reused it since the collector listed it) is kept. What remains is the time
        between that HEAD and the ``DeleteObjects`` call (milliseconds): S3 has no delete
        conditioned on LastModified for general-purpose buckets.
        """
        keys = sorted({self.key(ref) for ref in refs})
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            heads = self.objects.map(self.objects.head, batch)
            doomed = [
                key
                for key, head in zip(batch, heads, strict=True)
                if head is not None and (older_than is None or head["LastModified"].timestamp() <= older_than)
            ]
            if doomed:
                self.objects.delete(doomed)
            deleted += len(doomed)
        return deleted

    def list(self) -> Iterator[StoredBlob]:
        """Every blob under the prefix, with LastModified as ``stored_at``; other objects are skipped."""
        for listed in self.objects.list(self._root):
            ref = self._ref(listed.key)
            if ref is not None:
                yield StoredBlob(ref, listed.last_modified)
