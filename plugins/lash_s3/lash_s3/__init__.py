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
from typing import TYPE_CHECKING, Any, TypeVar

import lash
from lash.blobs import EnvelopeBlobStore
from lash.plugins import from_options
from lash_s3.options import S3BackendOptions, S3Options

if TYPE_CHECKING:
    from lash_s3.backend import S3Backend
    from lash_s3.storage import S3BlobStorage

__all__ = ["S3Backend", "S3BackendOptions", "S3BlobStorage", "S3Options", "s3_backend", "s3_blob_store"]

Opts = TypeVar("Opts", bound=S3Options)
T = TypeVar("T")

_LAZY = {"S3Backend": "lash_s3.backend", "S3BlobStorage": "lash_s3.storage"}


def __getattr__(name: str) -> Any:
    """``S3Backend`` and ``S3BlobStorage`` on first use (they import boto3)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lash_s3' has no attribute {name!r}")


def s3_blob_store(**options: Any) -> EnvelopeBlobStore:
    """The ``s3`` blob store (``[blobs] backend = "s3"``); checks the bucket before returning.

    Takes the keys of :class:`S3Options`.
    """
    return _blob_store(S3Options(**options))


def s3_backend(**options: Any) -> S3Backend:
    """The ``s3`` backend (``[store] backend = "s3"``): sessions and blobs in one bucket.

    Takes the keys of :class:`S3BackendOptions`: those of the blob store plus ``gc_grace_seconds``.
    """
    return _backend(S3BackendOptions(**options))


def _blob_store(options: S3Options) -> EnvelopeBlobStore:
    from lash_s3.client import connect
    from lash_s3.storage import S3BlobStorage

    storage = S3BlobStorage(
        connect(options), options.bucket, options.prefix, refresh_after_seconds=options.refresh_after_seconds
    )
    return EnvelopeBlobStore(storage, options.blob_profile)


def _backend(options: S3BackendOptions) -> S3Backend:
    from lash_s3.backend import S3Backend
    from lash_s3.client import connect

    return S3Backend(
        connect(options),
        options.bucket,
        options.prefix,
        blob_profile=options.blob_profile,
        refresh_after_seconds=options.refresh_after_seconds,
        gc_grace_seconds=options.gc_grace_seconds,
    )


def _built(options_type: type[Opts], build: Callable[[Opts], T]) -> Callable[[dict[str, Any]], T]:
    """A registry factory: ``options`` checked against ``options_type`` (clear errors), then built."""
    check = from_options(options_type)

    def factory(options: dict[str, Any]) -> T:
        return build(check(options))

    factory.__doc__ = options_type.__doc__
    return factory


@lash.hookimpl
def lash_register_backends(register: Callable[..., None]) -> None:
    register("s3", _built(S3BackendOptions, _backend))


@lash.hookimpl
def lash_register_blob_stores(register: Callable[..., None]) -> None:
    register("s3", _built(S3Options, _blob_store))
