"""botocore failures as lash errors.

Every S3 call of this plugin runs inside :func:`s3_errors`, so no ``botocore`` exception
escapes: the user gets a :class:`lash.BackendError` that names the operation, the bucket
and key, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from lash.errors import BackendError

MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "403"})
THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "503"}
)


def error_code(exc: ClientError) -> str:
    """The S3 error code of ``exc`` (the HTTP status when a HEAD response had no body)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def attempts_made(exc: ClientError) -> int:
    """How many attempts botocore made before giving up (1 when it did not retry)."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


def explain(exc: BaseException, operation: str, bucket: str, key: str | None) -> BackendError:
    """The lash error for a botocore failure of ``operation`` on ``s3://bucket/key``."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    prefix = f"S3 {operation} of {where} failed"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return BackendError(
            f"{prefix}: no AWS credentials found ({exc}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, a shared credentials file or an instance role"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code in MISSING_BUCKET_CODES:
            return BackendError(f"{prefix}: bucket {bucket!r} does not exist (create it, or set create_bucket = true)")
        if code in DENIED_CODES:
            return BackendError(f"{prefix}: access denied ({code}: {message}); check the credentials and bucket policy")
        if code in THROTTLE_CODES:
            return BackendError(
                f"{prefix}: throttled by S3 ({code}) after {attempts_made(exc)} attempt(s); "
                "raise max_attempts or reduce the request rate"
            )
        return BackendError(f"{prefix}: {code}: {message} (after {attempts_made(exc)} attempt(s))")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return BackendError(f"{prefix}: S3 endpoint unreachable or not answering, after retries ({exc})")
    return BackendError(f"{prefix}: {type(exc).__name__}: {exc}")


@contextmanager
def s3_errors(operation: str, bucket: str, key: str | None = None) -> Iterator[None]:
    """Translate any botocore/boto3 failure inside the block into :class:`lash.BackendError`."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, operation, bucket, key) from exc
