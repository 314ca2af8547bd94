"""lash-s3: content-addressed lash blobs on Amazon S3 or any S3-compatible endpoint.

Registered as blob store ``s3`` through the ``lash`` entry point. Pair it with a metadata
backend that keeps heads and nodes::

    [store]
    backend = "sqlite"
    [blobs]
    backend = "s3"
    options = { bucket = "agent-blobs", prefix = "prod" }

Blobs are deduplicated across every session and host writing to the same bucket/prefix;
the backend's ``Lash.gc()`` collects them with roots from every session head and a grace
period.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

import lash
from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.errors import BackendError, ConfigError
from lash.plugins import from_options
from lash_s3.errors import error_code, s3_errors
from lash_s3.storage import S3BlobStorage

__all__ = ["S3BlobStorage", "s3_blob_store"]

ADDRESSING_STYLES = ("auto", "path", "virtual")
DEFAULT_REGION = "us-east-1"

_SERVICE_MODELS = botocore.loaders.create_loader()
"""One loader per process: every store reuses the parsed S3 service model (~0.3 s per client otherwise)."""


def make_client(
    *,
    region: str | None,
    endpoint_url: str | None,
    addressing_style: str,
    max_attempts: int,
    connect_timeout: float,
    read_timeout: float,
) -> Any:
    """A boto3 S3 client with bounded botocore retries (standard mode) and timeouts."""
    if addressing_style not in ADDRESSING_STYLES:
        raise ConfigError(
            f"invalid addressing_style {addressing_style!r}", key="options.addressing_style", choices=ADDRESSING_STYLES
        )
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise ConfigError(f"max_attempts must be an integer >= 1, not {max_attempts!r}", key="options.max_attempts")
    core = botocore.session.get_session()  # credentials and region: the normal boto3 chain
    core.register_component("data_loader", _SERVICE_MODELS)
    session = boto3.session.Session(botocore_session=core)
    config = Config(
        region_name=region or session.region_name or DEFAULT_REGION,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": addressing_style},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def ensure_bucket(client: Any, bucket: str, *, create: bool) -> None:
    """Fail at open, not at the first commit, when the bucket is missing or unreachable."""
    with s3_errors("HeadBucket", bucket):
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket"):
                raise
    if not create:
        raise BackendError(
            f"S3 bucket {bucket!r} does not exist at {client.meta.endpoint_url}; "
            "create it, fix options.bucket, or set create_bucket = true"
        )
    region = client.meta.region_name
    location = {} if region == DEFAULT_REGION else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    already_ours = client.exceptions.BucketAlreadyOwnedByYou  # another process created it first
    with s3_errors("CreateBucket", bucket), contextlib.suppress(already_ours):
        client.create_bucket(Bucket=bucket, **location)


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
    if not isinstance(bucket, str) or not bucket:
        raise ConfigError("bucket must be a non-empty string", key="options.bucket")
    profile = BlobProfile(blob_profile)
    client = make_client(
        region=region,
        endpoint_url=endpoint_url,
        addressing_style=addressing_style,
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    ensure_bucket(client, bucket, create=create_bucket)
    storage = S3BlobStorage(client, bucket, prefix, refresh_after_seconds=refresh_after_seconds)
    return EnvelopeBlobStore(storage, profile)


@lash.hookimpl
def lash_register_blob_stores(register: Callable[..., None]) -> None:
    register("s3", from_options(s3_blob_store))
