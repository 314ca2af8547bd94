"""The few S3 object calls lash makes, with S3's answers (404, 412) turned into values.

Both the blob storage and the session storage go through :class:`S3Objects`, so every
call is wrapped in :func:`~lash_s3.errors.s3_errors` in one place and no botocore
exception escapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs
from botocore.exceptions import ClientError

from lash.errors import BackendError
from lash_s3.errors import error_code, s3_errors

T = TypeVar("T")
R = TypeVar("R")

DELETE_BATCH = 1000
"""S3's limit of keys per ``DeleteObjects`` request."""

CONCURRENT_REQUESTS = 8
"""Requests one :class:`S3Objects` sends at the same time (a commit's blobs, a session's segments, GC's HEADs)."""

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
PRECONDITION_FAILED = frozenset({"412", "PreconditionFailed"})


@attrs.frozen
class StoredObject:
    """An object's bytes and the ETag a conditional put compares against."""

    body: bytes
    etag: str


@attrs.frozen
class ListedObject:
    """A listing row: the key and its LastModified (epoch seconds, one-second resolution)."""

    key: str
    last_modified: float


class S3Objects:
    """Objects of one bucket through a thread-safe boto3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def map(self, call: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[call(item) for item in items]``, up to :data:`CONCURRENT_REQUESTS` at a time.

        The worker threads are started once and kept (starting threads per commit costs
        more than the requests they send on a busy host).
        """
        items = list(items)
        if len(items) < 2:
            return [call(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(CONCURRENT_REQUESTS, thread_name_prefix="lash-s3")
        return list(self._pool.map(call, items))

    def close(self) -> None:
        """Stop the worker threads (started again if the object is used after all)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def get(self, key: str) -> StoredObject | None:
        """The object at ``key``, or None when there is none."""
        with s3_errors("GetObject", self.bucket, key):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return None
                raise
            return StoredObject(response["Body"].read(), response["ETag"])

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata (``LastModified``, ``ETag``, ...), or None when there is none."""
        with s3_errors("HeadObject", self.bucket, key):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return None
                raise

    def put(self, key: str, body: bytes) -> str:
        """Store ``body`` at ``key`` unconditionally; returns the new ETag."""
        with s3_errors("PutObject", self.bucket, key):
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=body)["ETag"]

    def put_if(self, key: str, body: bytes, *, etag: str | None) -> str | None:
        """Compare-and-swap: store ``body`` only if ``key`` still has ``etag`` (None: only if absent).

        Returns the new ETag, or None when another writer got there first (S3 answered 412,
        or the object to replace is gone). S3 evaluates the condition atomically with the write.
        """
        condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        with s3_errors("PutObject (conditional)", self.bucket, key):
            try:
                return self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **condition)["ETag"]
            except ClientError as exc:
                code = error_code(exc)
                if code in PRECONDITION_FAILED or (etag is not None and code in NOT_FOUND):
                    return None
                raise

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` (missing ones silently) in ``DeleteObjects`` batches of at most 1,000."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with s3_errors("DeleteObjects", self.bucket, f"{batch[0]} (+{len(batch) - 1} keys)"):
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

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Every object under ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors("ListObjectsV2", self.bucket, prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    yield ListedObject(obj["Key"], obj["LastModified"].timestamp())

    def folders(self, prefix: str) -> Iterator[str]:
        """The ``prefix/<name>/`` "folders" directly under ``prefix`` (keys grouped at the next ``/``)."""
        paginator = self.client.get_paginator("list_objects_v2")
        with s3_errors("ListObjectsV2", self.bucket, prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", ()):
                    yield common["Prefix"]
