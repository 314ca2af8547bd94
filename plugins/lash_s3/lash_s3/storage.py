"""Raw blob envelopes as S3 objects: :class:`S3BlobStorage` implements lash's ``BlobStorage``.

Keys are ``<prefix>/sha256/<hex[:2]>/<hex>`` (``sha256/...`` without a prefix), so every
session and every host writing the same content shares one object. Envelopes, compression
and hash verification are added by :class:`lash.blobs.EnvelopeBlobStore`; this module only
moves bytes and turns S3 facts (404, LastModified) into the protocol's answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lash.blobs import StoredBlob
from lash.errors import BackendError
from lash.model import BlobRef
from lash_s3.errors import error_code, s3_errors

DELETE_BATCH = 1000
"""S3's limit of keys per ``DeleteObjects`` request."""

EXISTENCE_CHECK_THREADS = 8
"""Concurrent HEAD requests when :meth:`S3BlobStorage.delete` counts which refs exist."""

_HEX = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


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

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when it does not exist."""
        with s3_errors("HeadObject", self.bucket, key):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _NOT_FOUND:
                    return None
                raise

    def read(self, ref: BlobRef) -> bytes | None:
        key = self.key(ref)
        with s3_errors("GetObject", self.bucket, key):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _NOT_FOUND:
                    return None
                raise
            return response["Body"].read()

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        """Upload ``envelope`` unless the object exists (HEAD first: no body is sent twice).

        An existing object older than ``refresh_after_seconds`` is copied onto itself, which
        restarts its LastModified, so a collector's grace period protects a blob that a
        commit in flight reuses. Concurrent writers of one new ref both upload; the bytes
        decode to the same content, so the last upload winning is harmless.
        """
        key = self.key(ref)
        head = self._head(key)
        if head is None:
            with s3_errors("PutObject", self.bucket, key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=envelope)
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

    def exists(self, ref: BlobRef) -> bool:
        return self._head(self.key(ref)) is not None

    def delete(self, refs: Collection[BlobRef]) -> int:
        """Delete ``refs`` in ``DeleteObjects`` batches of at most 1,000 keys.

        S3 deletes missing keys silently, so the existing ones are found with concurrent
        HEAD requests first: the count is exact, at one HEAD per ref.
        """
        keys = sorted({self.key(ref) for ref in refs})
        if not keys:
            return 0
        with ThreadPoolExecutor(EXISTENCE_CHECK_THREADS) as pool:
            present = [key for key, head in zip(keys, pool.map(self._head, keys), strict=True) if head is not None]
        for start in range(0, len(present), DELETE_BATCH):
            batch = present[start : start + DELETE_BATCH]
            with s3_errors("DeleteObjects", self.bucket, f"{self._root}* ({len(batch)} keys)"):
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            failed = response.get("Errors", [])
            if failed:
                first = failed[0]
                raise BackendError(
                    f"S3 DeleteObjects of s3://{self.bucket}/{first.get('Key')} failed: "
                    f"{first.get('Code')}: {first.get('Message')} ({len(failed)} of {len(batch)} keys failed)"
                )
        return len(present)

    def list(self) -> Iterator[StoredBlob]:
        """Every blob under the prefix, with LastModified as ``stored_at``; other objects are skipped."""
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors("ListObjectsV2", self.bucket, self._root):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root):
                for obj in page.get("Contents", ()):
                    ref = self._ref(obj["Key"])
                    if ref is not None:
                        yield StoredBlob(ref, obj["LastModified"].timestamp())
