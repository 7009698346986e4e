"""orchard.auto_labeling.s3_objects: URIs split and folders normalized in one place; reads and writes."""

from __future__ import annotations

import boto3
import pytest

from orchard.auto_labeling import s3_objects


@pytest.mark.parametrize(
    ("given", "folder"),
    [
        ("s3://b/cam1", "s3://b/cam1/"),
        ("s3://b/cam1/", "s3://b/cam1/"),
        (" s3://b/a/cam1 ", "s3://b/a/cam1/"),
        ("s3://b", "s3://b/"),  # a bucket alone: the whole bucket
    ],
)
def test_a_prefix_is_read_as_a_folder(given, folder):
    assert s3_objects.folder(given) == folder


def test_a_uri_splits_into_bucket_and_key():
    assert s3_objects.split("s3://b/a/b.json") == ("b", "a/b.json")
    assert s3_objects.split("s3://b") == ("b", "")


def test_objects_are_written_read_and_found_by_uri(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="labels")

    s3_objects.write_text(s3, "s3://labels/a/é.json", '{"ok": "é"}')

    assert s3_objects.read_text(s3, "s3://labels/a/é.json") == '{"ok": "é"}'
    assert s3_objects.exists(s3, "s3://labels/a/é.json")
    assert not s3_objects.exists(s3, "s3://labels/a/missing.json")
    assert s3_objects.bucket_exists(s3, "labels") and not s3_objects.bucket_exists(s3, "no-such-bucket")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_many_objects_are_read_in_the_order_asked(aws, concurrency):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="many-reads")
    uris = []
    for i in range(12):
        s3.put_object(Bucket="many-reads", Key=f"out/{i}.out", Body=f"answer {i}".encode())
        uris.append(f"s3://many-reads/out/{i}.out")
    uris.reverse()
    assert s3_objects.read_many(s3, uris, concurrency) == [
        f"answer {i}".encode() for i in reversed(range(12))
    ]


def test_reading_many_fails_on_a_missing_object(aws):
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="many-reads")
    s3.put_object(Bucket="many-reads", Key="out/0.out", Body=b"answer")
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3_objects.read_many(s3, ["s3://many-reads/out/0.out", "s3://many-reads/out/gone.out"], 4)
