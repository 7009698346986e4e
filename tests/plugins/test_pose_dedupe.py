"""One training per uploaded object version (issue 13.2): a duplicate event or a second identical upload is
acknowledged and skipped, with the run that trains it named; racing runs cannot both win."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from orchard.pose_training import upload as pose_upload

ARTIFACTS = "orchard-artifacts-dedupe"
DATA = "lab-uploads-dedupe"
KEY = "pose-training/projects/mouse.zip"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    for bucket in (ARTIFACTS, DATA):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=DATA, Key=KEY, Body=b"PK zip bytes")
    return client


def event(etag: str, key: str = KEY) -> dict:
    """An Asset event as the SQS watcher makes it: the EventBridge "Object Created" message in its payload."""
    body = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": DATA},
            "object": {"key": key, "size": 12, "etag": etag, "sequencer": "0062E99A88DC407460"},
        },
    }
    return {"extra": {"payload": {"message_batch": [{"Body": json.dumps(body)}]}}}


def project(s3, events: list[dict], run_id: str) -> dict:
    settings = type("S", (), {"data_bucket": DATA, "artifacts_bucket": ARTIFACTS})()
    [found] = pose_upload.projects_of_run({"project_uri": ""}, "pose_training", run_id, events, settings)
    return found


def test_the_same_event_delivered_twice_trains_once_and_the_duplicate_names_the_first_run(s3):
    first = project(s3, [event("abc123")], "asset_triggered__1")
    again = project(s3, [event("abc123")], "asset_triggered__2")  # EventBridge delivered it once more
    assert first["object_version"] == again["object_version"] == "etag:abc123"

    marker = pose_upload.claim_upload(s3, ARTIFACTS, first, "asset_triggered__1", log=lambda line: None)
    with pytest.raises(pose_upload.DuplicateUpload) as duplicate:
        pose_upload.claim_upload(s3, ARTIFACTS, again, "asset_triggered__2", log=lambda line: None)
    message = str(duplicate.value)
    assert "already trained by run asset_triggered__1" in message and marker in message
    assert f"project_uri=s3://{DATA}/{KEY}" in message  # how to train it again on purpose
    # a retry of the run holding the marker goes on
    retried = pose_upload.claim_upload(s3, ARTIFACTS, first, "asset_triggered__1", log=lambda line: None)
    assert retried == marker


def test_a_changed_zip_at_the_same_key_is_a_new_version_and_trains(s3):
    pose_upload.claim_upload(s3, ARTIFACTS, project(s3, [event("v1")], "r1"), "r1", log=lambda line: None)
    pose_upload.claim_upload(s3, ARTIFACTS, project(s3, [event("v2")], "r2"), "r2", log=lambda line: None)


def test_racing_runs_for_one_upload_have_exactly_one_winner(s3):
    projects = [project(s3, [event("race")], f"run-{i}") for i in range(8)]

    def claim(index: int) -> str:
        try:
            pose_upload.claim_upload(s3, ARTIFACTS, projects[index], f"run-{index}", log=lambda line: None)
            return "won"
        except pose_upload.DuplicateUpload:
            return "skipped"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(claim, range(8)))
    assert sorted(outcomes) == ["skipped"] * 7 + ["won"]


def test_the_sandbox_refuses_a_conditional_put_over_an_existing_key_as_s3_does(s3):
    s3.put_object(Bucket=ARTIFACTS, Key="m.json", Body=b"1", IfNoneMatch="*")
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.put_object(Bucket=ARTIFACTS, Key="m.json", Body=b"2", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=ARTIFACTS, Key="m.json")["Body"].read() == b"1"


def test_an_event_without_version_fields_falls_back_to_the_objects_etag(s3):
    found = project(s3, [event("")], "r1")
    assert found["object_version"].startswith("sequencer:")
    no_fields = dict(found, object_version="")
    assert pose_upload.object_version(s3, no_fields).startswith("etag:")
