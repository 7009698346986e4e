"""orchard.pose_training.upload: which projects a run trains and with which settings.

One training per uploaded object version (issue 13.2): a duplicate event or a second identical upload is
acknowledged and skipped, with the run that trains it named; racing runs cannot both win. The DAG's
`find_projects` and `validate_project` are `run_projects` and `prepare_project`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import boto3
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from local_aws.demo_data import pose_training as demo
from orchard.errors import InputError
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


RUN = SimpleNamespace(dag_id="pose_training", run_id="asset_triggered__2026-12-06_a")
PARAMS = {
    "project_uri": None,
    "epochs": 200,
    "batch_size": 8,
    "net_type": "resnet_50",
    "backbone_weights": None,
    "train_crop": None,
    "max_zip_mb": 2048,
}
NO_METADATA_PARAMS = SimpleNamespace(get_param=lambda name: None)  # the upload carries no training metadata


def test_a_run_with_nothing_to_train_is_an_input_error_naming_both_ways_to_give_one():
    with pytest.raises(
        InputError, match="no project to train: upload a zip under .* or trigger with project_uri"
    ):
        pose_upload.run_projects(PARAMS, RUN, {})


def test_a_run_trains_the_uploads_of_every_triggering_asset_event(monkeypatch):
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", ARTIFACTS)
    events = {"uploads": [event("e1")], "more_uploads": [event("e2", key="pose-training/projects/rat.zip")]}

    projects = pose_upload.run_projects(PARAMS, RUN, events)

    assert [p["key"] for p in projects] == [KEY, "pose-training/projects/rat.zip"]
    assert all(p["output_uri"].startswith(f"s3://{ARTIFACTS}/pose_training/") for p in projects)


def test_a_valid_upload_is_prepared_once_and_its_duplicate_skipped_naming_the_run(s3, monkeypatch):
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", ARTIFACTS)
    s3.put_object(Bucket=DATA, Key=KEY, Body=demo.project_zip())
    found = project(s3, [event("v1")], RUN.run_id)

    ready = pose_upload.prepare_project(found, PARAMS, NO_METADATA_PARAMS, RUN.run_id, log=lambda line: None)

    assert ready["training"]["epochs"] == 200 and ready["labeled_frames"] > 0
    environment = {e["name"]: e["value"] for e in ready["container_overrides"]["environment"]}
    assert environment["DLC_PROJECT_PATH"] == KEY and environment["OUTPUT_PATH"] == found["output_uri"]
    again = project(s3, [event("v1")], "asset_triggered__2026-12-06_b")
    with pytest.raises(AirflowSkipException, match=f"already trained by run {RUN.run_id}"):
        pose_upload.prepare_project(again, PARAMS, NO_METADATA_PARAMS, again["run_id"], log=lambda line: None)


def test_preparing_a_project_reads_the_settings_once_and_opens_one_session(s3, monkeypatch, reads):
    """Its metadata, zip and claim reads share one settings read and one S3 session (was: 2 reads)."""
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", ARTIFACTS)
    s3.put_object(Bucket=DATA, Key=KEY, Body=demo.project_zip())
    found = project(s3, [event("v2")], RUN.run_id)

    ready = pose_upload.prepare_project(found, PARAMS, NO_METADATA_PARAMS, RUN.run_id, log=lambda line: None)

    assert ready["labeled_frames"] > 0
    assert (reads.settings, reads.sessions) == (1, 1)
