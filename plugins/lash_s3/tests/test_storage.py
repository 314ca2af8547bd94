"""S3BlobStorage against in-process moto: key layout, dedup, age refresh, batching, errors."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import lash_s3.storage
import pytest
from botocore.awsrequest import AWSResponse
from lash_s3 import S3BlobStorage, s3_blob_store

import lash
from lash.blobs import EnvelopeBlobStore
from lash.model import blob_ref_for


def keys(client: Any, bucket: str) -> list[str]:
    return [obj["Key"] for obj in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def count_calls(client: Any) -> Counter[str]:
    """Counts of S3 operations ``client`` sends from now on."""
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


def storage_of(store: EnvelopeBlobStore) -> S3BlobStorage:
    assert isinstance(store.storage, S3BlobStorage)
    return store.storage


def test_blobs_are_keyed_by_sha256_under_the_prefix(mocked_s3: Any, bucket: str) -> None:
    store = s3_blob_store(bucket=bucket, prefix="/prod/agents/", create_bucket=True)
    ref = store.put(b"hello")
    digest = ref.removeprefix("sha256:")
    assert keys(mocked_s3, bucket) == [f"prod/agents/sha256/{digest[:2]}/{digest}"]


def test_without_prefix_keys_have_no_leading_slash(mocked_s3: Any, bucket: str) -> None:
    store = s3_blob_store(bucket=bucket, create_bucket=True)
    digest = store.put(b"hello").removeprefix("sha256:")
    assert keys(mocked_s3, bucket) == [f"sha256/{digest[:2]}/{digest}"]


def test_putting_stored_content_again_uploads_nothing(mocked_store: EnvelopeBlobStore) -> None:
    ref = mocked_store.put(b"catalogue" * 1000)
    calls = count_calls(storage_of(mocked_store).client)
    assert mocked_store.put(b"catalogue" * 1000) == ref
    assert calls == {"HeadObject": 1}


def test_reusing_an_old_blob_restarts_its_age_for_the_collector(mocked_store: EnvelopeBlobStore) -> None:
    storage = storage_of(mocked_store)
    ref = mocked_store.put(b"shared tool catalogue")
    (before,) = storage.list()
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    storage.refresh_after_seconds = 1.0
    calls = count_calls(storage.client)
    assert storage.write(ref, b"ignored: the stored envelope is kept") is False
    (after,) = storage.list()
    assert calls["CopyObject"] == 1 and calls["PutObject"] == 0
    assert after.stored_at is not None and before.stored_at is not None and after.stored_at > before.stored_at
    assert mocked_store.get(ref) == b"shared tool catalogue"


def test_reusing_a_young_blob_does_not_copy_it(mocked_store: EnvelopeBlobStore) -> None:
    mocked_store.put(b"fresh")
    calls = count_calls(storage_of(mocked_store).client)
    mocked_store.put(b"fresh")
    assert calls["CopyObject"] == 0


def test_listing_skips_objects_that_are_not_lash_blobs(mocked_s3: Any, mocked_store: EnvelopeBlobStore) -> None:
    ref = mocked_store.put(b"blob")
    for key in ("lash/sha256/README", "lash/sha256/zz/" + "0" * 64, "lash/other/file", "elsewhere"):
        mocked_s3.put_object(Bucket=storage_of(mocked_store).bucket, Key=key, Body=b"x")
    assert list(mocked_store.refs()) == [ref]


def test_listing_reports_last_modified_as_stored_at(mocked_store: EnvelopeBlobStore) -> None:
    started = time.time()
    mocked_store.put(b"dated")
    (blob,) = storage_of(mocked_store).list()
    assert blob.stored_at is not None and started - 2 <= blob.stored_at <= time.time() + 2


def test_delete_sends_batches_and_counts_only_existing_refs(
    mocked_store: EnvelopeBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lash_s3.storage, "DELETE_BATCH", 3)
    refs = [mocked_store.put(f"blob {i}".encode()) for i in range(7)]
    missing = blob_ref_for(b"never stored")
    calls = count_calls(storage_of(mocked_store).client)
    assert mocked_store.delete([*refs, missing]) == 7
    assert calls["DeleteObjects"] == 3
    assert list(mocked_store.refs()) == []


def test_delete_batch_matches_s3_limit() -> None:
    assert lash_s3.storage.DELETE_BATCH == 1000


def test_missing_object_reads_as_none(mocked_store: EnvelopeBlobStore) -> None:
    assert mocked_store.get(blob_ref_for(b"absent")) is None


def test_bucket_deleted_behind_the_store_is_a_backend_error_naming_it(
    mocked_s3: Any, mocked_store: EnvelopeBlobStore
) -> None:
    bucket = storage_of(mocked_store).bucket
    mocked_s3.delete_bucket(Bucket=bucket)
    with pytest.raises(lash.BackendError, match=f"bucket '{bucket}' does not exist"):
        mocked_store.get(blob_ref_for(b"anything"))
    with pytest.raises(lash.BackendError, match=f"s3://{bucket}/lash/sha256/.*does not exist"):
        mocked_store.put(b"anything")


def test_throttling_is_retried_by_botocore_then_raised(mocked_s3: Any, bucket: str) -> None:
    store = s3_blob_store(bucket=bucket, create_bucket=True, max_attempts=3)
    client = storage_of(store).client
    attempts: list[str] = []

    def slow_down(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.method)
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, {}, _Raw(body))

    client.meta.events.register_first("before-send.s3.GetObject", slow_down)
    started = time.monotonic()
    with pytest.raises(lash.BackendError, match=r"throttled by S3 \(SlowDown\) after 3 attempt"):
        store.get(blob_ref_for(b"busy"))
    assert len(attempts) == 3
    assert time.monotonic() - started < 30


class _Raw:
    """The raw body of a canned botocore response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"addressing_style": "sideways"}, "blobs.options.addressing_style"),
        ({"max_attempts": 0}, "blobs.options.max_attempts"),
        ({"bucket_name": "typo"}, "blobs.options.bucket_name"),
    ],
)
def test_bad_options_are_config_errors_naming_the_key(
    mocked_s3: Any, bucket: str, options: dict[str, Any], key: str
) -> None:
    config = {"store": {"backend": "memory"}, "blobs": {"backend": "s3", "options": {"bucket": bucket, **options}}}
    with pytest.raises(lash.ConfigError, match=key.replace(".", r"\.")):
        lash.open(config)


def test_bucket_option_is_required(mocked_s3: Any) -> None:
    with pytest.raises(lash.ConfigError, match="missing required option 'bucket'"):
        lash.open({"store": {"backend": "memory"}, "blobs": {"backend": "s3", "options": {}}})


def test_an_unknown_blob_profile_is_a_config_error_naming_it(mocked_s3: Any, bucket: str) -> None:
    options = {"bucket": bucket, "blob_profile": "tiny"}
    with pytest.raises(lash.ConfigError, match="'tiny' is not a valid BlobProfile"):
        lash.open({"store": {"backend": "memory"}, "blobs": {"backend": "s3", "options": options}})


def test_the_backend_takes_the_blob_store_options_and_its_grace(mocked_s3: Any, bucket: str) -> None:
    with pytest.raises(lash.ConfigError, match=r"unknown option 'grace' .*gc_grace_seconds") as raised:
        lash.open({"store": {"backend": "s3", "options": {"bucket": bucket, "grace": 1}}})
    assert "refresh_after_seconds" in str(raised.value)  # the shared connection options are listed too
