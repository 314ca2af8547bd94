"""The boto3 S3 client lash-s3 talks through, and the bucket check done when a store opens.

This is the only module that imports boto3; :mod:`lash_s3` imports it when a store or
backend is built, never when the entry point loads, so ``lash.open()`` without S3 in its
config does not pay boto3's import (~0.2 s).
"""

from __future__ import annotations

import contextlib
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from lash.errors import BackendError, ConfigError
from lash_s3.errors import error_code, s3_errors
from lash_s3.options import S3Options

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
    max_pool_connections: int = 10,
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
        max_pool_connections=max_pool_connections,
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


def connect(options: S3Options) -> Any:
    """A checked client of ``options.bucket`` (created first when ``options.create_bucket``)."""
    if not isinstance(options.bucket, str) or not options.bucket:
        raise ConfigError("bucket must be a non-empty string", key="options.bucket")
    client = make_client(
        region=options.region,
        endpoint_url=options.endpoint_url,
        addressing_style=options.addressing_style,
        max_attempts=options.max_attempts,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
    )
    ensure_bucket(client, options.bucket, create=options.create_bucket)
    return client
