"""lash-s3: lash on Amazon S3 or any S3-compatible endpoint.

Registers, through the ``lash`` entry point, blob store ``s3`` (blobs in a bucket, heads
and nodes in another backend) and backend ``s3`` (everything in the bucket)::

    [store]
    backend = "sqlite"
    [blobs]
    backend = "s3"
    options = { bucket = "agent-blobs", prefix = "prod" }

Blobs are deduplicated across every session and host writing to the same bucket/prefix;
``Lash.gc()`` collects them with roots from every session head and a grace period.
boto3 is imported only when an S3 store or backend is built, so loading this entry point
costs nothing to a configuration that does not use S3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lash
from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.plugins import from_options

if TYPE_CHECKING:
    from lash_s3.backend import S3Backend
    from lash_s3.storage import S3BlobStorage

__all__ = ["S3Backend", "S3BlobStorage", "s3_backend", "s3_blob_store"]

_LAZY = {"S3Backend": "lash_s3.backend", "S3BlobStorage": "lash_s3.storage"}


def __getattr__(name: str) -> Any:
    """``S3Backend`` and ``S3BlobStorage`` on first use (they import boto3)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lash_s3' has no attribute {name!r}")


def _connect(options: dict[str, Any]) -> Any:
    from lash_s3.client import connect

    return connect(**options)


def s3_blob_store(
    *,
    bucket: str,
    prefix: str = "",
    region: str | None = None,
    endpoint_url: str | None = None,
    addressing_style: str = "auto",
    create_bucket: bool = False,
    blob_profile: str = BlobProfile.BALANCED,
    max_attempts: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    refresh_after_seconds: float = 600.0,
) -> EnvelopeBlobStore:
    """The ``s3`` blob store (``[blobs] backend = "s3"``); checks the bucket before returning.

    ``max_attempts`` counts every attempt of one request, the first included (botocore's
    standard retry mode backs off between them). ``refresh_after_seconds`` must stay well
    below the metadata backend's ``gc_grace_seconds`` (see :class:`S3BlobStorage`).
    """
    from lash_s3.storage import S3BlobStorage

    profile = BlobProfile(blob_profile)
    client = _connect(
        dict(
            bucket=bucket,
            region=region,
            endpoint_url=endpoint_url,
            addressing_style=addressing_style,
            create_bucket=create_bucket,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
    )
    return EnvelopeBlobStore(
        S3BlobStorage(client, bucket, prefix, refresh_after_seconds=refresh_after_seconds), profile
    )


def s3_backend(
    *,
    bucket: str,
    prefix: str = "",
    region: str | None = None,
    endpoint_url: str | None = None,
    addressing_style: str = "auto",
    create_bucket: bool = False,
    blob_profile: str = BlobProfile.BALANCED,
    max_attempts: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    refresh_after_seconds: float = 600.0,
    gc_grace_seconds: float = 3600.0,
) -> S3Backend:
    """The ``s3`` backend (``[store] backend = "s3"``): sessions and blobs in one bucket.

    The same connection options as the blob store; ``gc_grace_seconds`` (default one hour)
    keeps blobs and node segments of commits in flight from ``Lash.gc()`` and ``vacuum``.
    """
    from lash_s3.backend import S3Backend

    profile = BlobProfile(blob_profile)
    client = _connect(
        dict(
            bucket=bucket,
            region=region,
            endpoint_url=endpoint_url,
            addressing_style=addressing_style,
            create_bucket=create_bucket,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
    )
    return S3Backend(
        client,
        bucket,
        prefix,
        blob_profile=profile,
        refresh_after_seconds=refresh_after_seconds,
        gc_grace_seconds=gc_grace_seconds,
    )


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("s3", from_options(s3_backend))


@lash.hookimpl
def lash_register_blob_stores(register: Callable[..., None]) -> None:
    register("s3", from_options(s3_blob_store))
