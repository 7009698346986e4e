"""Moving job data between the sandbox's S3 and a job's local folders, as the AWS services do."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

from local_aws import jobs, sandbox_client


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def client():
    return sandbox_client("s3", jobs.endpoint_url())


def read(uri: str) -> bytes:
    bucket, key = split_uri(uri)
    return client().get_object(Bucket=bucket, Key=key)["Body"].read()


class BucketInOtherRegion(ValueError):
    """A job read an input bucket outside its own Region."""


def bucket_region(bucket: str) -> str:
    """The bucket's Region as GetBucketLocation says it (no LocationConstraint is us-east-1)."""
    return client().get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"


def require_same_region(uri: str, job_region: str) -> None:
    """SageMaker reads job input only from a bucket in the job's Region.

    S3DataSource.S3Uri: "Your input bucket must be located in same Amazon Web Services region as your
    training job" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html);
    S3 itself answers a request sent to another Region's endpoint with 301 PermanentRedirect
    (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
    """
    bucket, _ = split_uri(uri)
    region = bucket_region(bucket)
    if region != job_region:
        raise BucketInOtherRegion(
            f"PermanentRedirect: the S3 bucket {bucket!r} of {uri} is in {region}, but the job runs in "
            f"{job_region}; a SageMaker job reads its input only from a bucket in its own Region. Copy the "
            f"data to a bucket in {job_region}, or run the job in {region}."
        )


def download_prefix(uri: str, dest: Path) -> int:
    """Copy every object under a key prefix (a literal prefix, as SageMaker's S3Prefix) into dest."""
    s3 = client()
    bucket, prefix = split_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
            if obj["Key"].endswith("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            count += 1
    return count


def download_file(uri: str, dest: Path) -> Path:
    bucket, key = split_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    client().download_file(bucket, key, str(dest))
    return dest


def upload_dir(src: Path, uri: str) -> int:
    s3 = client()
    bucket, prefix = split_uri(uri)
    count = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        key = (
            f"{prefix.rstrip('/')}/{path.relative_to(src).as_posix()}"
            if prefix
            else path.relative_to(src).as_posix()
        )
        s3.upload_file(str(path), bucket, key)
        count += 1
    return count


def upload_file(src: Path, uri: str) -> str:
    bucket, key = split_uri(uri)
    client().upload_file(str(src), bucket, key)
    return uri


def tar_dir(src: Path, dest: Path) -> Path:
    """A gzipped tarball of src's contents (no leading folder), as SageMaker packs model.tar.gz."""
    with tarfile.open(dest, "w:gz") as tar:
        for path in sorted(src.iterdir()):
            tar.add(path, arcname=path.name)
    return dest


def untar(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")  # refuses absolute paths and '..'


def tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzipped tarball of in-memory files, `{"code/inference.py": b"..."}`: model.tar.gz and source dirs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
