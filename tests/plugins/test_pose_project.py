"""validate_project refuses each broken DeepLabCut zip, before anything billable, naming the fix."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import boto3
import pytest

from local_aws.demo_data import pose_training as tiny
from orchard.pose_training.project import MiB, ProjectRejected, validate_project

BUCKET = "lab-uploads"
ROOT = tiny.PROJECT


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def upload(s3, body: bytes, key: str = "projects/p.zip") -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def files(drop: str = "", replace: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None):
    for name, content in tiny.project_files():
        if drop and drop in name:
            continue
        yield name, (replace or {}).get(name, content)
    yield from (extra or {}).items()


def test_the_tiny_project_passes_without_reading_the_whole_zip(s3):
    long_video = os.urandom(3 * MiB)  # incompressible: the zip is over 3 MiB
    body = tiny.project_zip(files(extra={f"{ROOT}/videos/long.avi": long_video}))
    key = upload(s3, body)
    summary = validate_project(s3, BUCKET, key, max_bytes=50 * MiB)
    assert summary.root == f"{ROOT}/"
    assert summary.bodyparts == ["head", "tail"]
    assert summary.labeled_frames == 8
    # the video and the PNGs are never read: only the central directory, config.yaml and the CSV
    assert summary.zip_bytes == len(body) and summary.bytes_read < 512 * 1024


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"PK\x03\x04 this is not really a zip", "is not a zip file"),
        (b"", "is not a zip file"),
    ],
)
def test_not_a_zip(s3, body, message):
    with pytest.raises(ProjectRejected, match=message):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=MiB)


def test_empty_zip(s3):
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    with pytest.raises(ProjectRejected, match="empty zip"):
        validate_project(s3, BUCKET, upload(s3, buffer.getvalue()), max_bytes=MiB)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../etc/cron.d/evil", r"outside the project \(`\.\.`, zip-slip\)"),
        (f"{ROOT}/labeled-data/../../escape.txt", "zip-slip"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
    ],
)
def test_unsafe_paths(s3, name, message):
    body = tiny.project_zip(files(extra={name: b"x"}))
    with pytest.raises(ProjectRejected, match=message):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_symbolic_link(s3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in tiny.project_files():
            archive.writestr(name, content)
        link = zipfile.ZipInfo(f"{ROOT}/labeled-data/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")
    with pytest.raises(ProjectRejected, match="symbolic link"):
        validate_project(s3, BUCKET, upload(s3, buffer.getvalue()), max_bytes=10 * MiB)


def test_no_config(s3):
    with pytest.raises(ProjectRejected, match="has no config.yaml"):
        validate_project(
            s3, BUCKET, upload(s3, tiny.project_zip(files(drop="config.yaml"))), max_bytes=10 * MiB
        )


@pytest.mark.parametrize("bodyparts", ["bodyparts: []\n", "bodyparts:\n", ""])
def test_config_without_bodyparts(s3, bodyparts):
    config = (
        "".join(
            line + "\n"
            for line in tiny.config_yaml().splitlines()
            if not line.startswith(("bodyparts", "- head", "- tail"))
        )
        + bodyparts
    )
    body = tiny.project_zip(files(replace={f"{ROOT}/config.yaml": config.encode()}))
    with pytest.raises(ProjectRejected, match="defines no bodyparts"):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_no_labeled_data(s3):
    with pytest.raises(ProjectRejected, match="has no labeled-data/"):
        validate_project(
            s3, BUCKET, upload(s3, tiny.project_zip(files(drop="labeled-data"))), max_bytes=10 * MiB
        )


def test_labels_without_a_label_file(s3):
    with pytest.raises(ProjectRejected, match="holds no CollectedData_"):
        validate_project(s3, BUCKET, upload(s3, tiny.project_zip(files(drop=".csv"))), max_bytes=10 * MiB)


def test_labels_referring_to_a_missing_frame(s3):
    body = tiny.project_zip(files(drop="img006.png"))
    with pytest.raises(
        ProjectRejected, match=r"labels labeled-data/tinymouse/img006.png, which is not in the zip"
    ):
        validate_project(s3, BUCKET, upload(s3, body), max_bytes=10 * MiB)


def test_zip_over_the_size_limit_is_refused_before_reading_it(s3):
    body = tiny.project_zip()
    key = upload(s3, body)
    with pytest.raises(ProjectRejected, match=r"over the 0 MiB limit \(param max_zip_mb\)"):
        validate_project(s3, BUCKET, key, max_bytes=len(body) - 1)


def test_missing_object_and_wrong_extension(s3):
    with pytest.raises(ProjectRejected, match="does not exist"):
        validate_project(s3, BUCKET, "projects/nothing.zip", max_bytes=MiB)
    with pytest.raises(ProjectRejected, match="is not a .zip"):
        validate_project(s3, BUCKET, upload(s3, b"x", key="projects/p.tar"), max_bytes=MiB)
