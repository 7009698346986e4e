"""S3 objects by URI, as auto_labeling reads and writes them: the one place that splits a URI and calls S3.

Each function takes the boto3 S3 client of the task (`orchard.aws.client("s3", conn_id=...)`), so one task
makes one.
"""

from __future__ import annotations

from typing import Any


def split(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def folder(uri: str) -> str:
    """A `*_prefix` param is a folder: `s3://b/cam1` means `s3://b/cam1/`, never `cam10/` or `cam1-old/`.
    The one place that normalizes it; a bucket alone (`s3://b`) means the whole bucket."""
    uri = uri.strip()
    bucket, key = split(uri)
    return f"s3://{bucket}/{key}" if not key or key.endswith("/") else f"s3://{bucket}/{key}/"


def bucket_exists(s3: Any, bucket: str) -> bool:
    """HeadBucket answers 404 (no such bucket) or 403 (not yours to read) without telling more: both no."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] in (403, 404):
            return False
        raise


def exists(s3: Any, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = split(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def read_bytes(s3: Any, uri: str) -> bytes:
    bucket, key = split(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def read_text(s3: Any, uri: str) -> str:
    return read_bytes(s3, uri).decode("utf-8")


def read_text_if_any(s3: Any, uri: str) -> str | None:
    """The object's text, or None when there is none: GetObject answers 404 NoSuchKey for a missing key
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html), one call where `exists` and a
    read are two."""
    from botocore.exceptions import ClientError

    try:
        return read_text(s3, uri)
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return None
        raise


def read_many(s3: Any, uris: list[str], concurrency: int) -> list[bytes]:
    """The objects at `uris`, in their order, at most `concurrency` GETs in flight (a boto3 client is
    thread-safe): one by one, each GET waits a full round trip. The first read that fails raises."""
    from concurrent.futures import ThreadPoolExecutor

    if concurrency <= 1 or len(uris) <= 1:
        return [read_bytes(s3, uri) for uri in uris]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-read") as pool:
        return list(pool.map(lambda uri: read_bytes(s3, uri), uris))


def write_text(s3: Any, uri: str, body: str) -> None:
    bucket, key = split(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))


def write_many(s3: Any, bodies: dict[str, str], concurrency: int) -> None:
    """Each text at its URI, at most `concurrency` PUTs in flight (`read_many`'s way). The first write that
    fails raises, once the others ended."""
    from concurrent.futures import ThreadPoolExecutor

    if concurrency <= 1 or len(bodies) <= 1:
        for uri, body in bodies.items():
            write_text(s3, uri, body)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(bodies)), thread_name_prefix="s3-write") as pool:
        list(pool.map(lambda item: write_text(s3, *item), bodies.items()))
