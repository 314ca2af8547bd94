"""The ``options`` tables of the ``s3`` blob store and backend, as records.

Both name a bucket and how to reach it; the backend adds the grace period of its
collector. One record each, so the options are listed, defaulted and checked once.
Importing this module does not import boto3.
"""

from __future__ import annotations

import attrs

from lash.blobs import BlobProfile


@attrs.frozen(kw_only=True)
class S3Options:
    """``[blobs] backend = "s3"`` options: where the bucket is and how to talk to it.

    ``max_attempts`` counts every attempt of one request, the first included (botocore's
    standard retry mode backs off between them). ``refresh_after_seconds`` must stay well
    below the metadata backend's ``gc_grace_seconds`` (see :class:`lash_s3.S3BlobStorage`).
    """

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    addressing_style: str = "auto"
    create_bucket: bool = False
    blob_profile: BlobProfile = attrs.field(default=BlobProfile.BALANCED, converter=BlobProfile)
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    refresh_after_seconds: float = 600.0


@attrs.frozen(kw_only=True)
class S3BackendOptions(S3Options):
    """``[store] backend = "s3"`` options: those of the blob store, plus the collector's grace.

    ``gc_grace_seconds`` (default one hour) keeps blobs and node segments of commits in
    flight from ``Lash.gc()`` and ``vacuum``.
    """

    gc_grace_seconds: float = 3600.0
