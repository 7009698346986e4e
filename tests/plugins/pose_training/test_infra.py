"""pose_training's AWS resources: the GPU Batch setup and the S3 → EventBridge → SQS upload path."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from unittest import mock

import boto3
import pytest
from airflow.sdk import Param

from local_aws.demo_data import pose_training as demo
from orchard.pose_training import infra as pose_infra
from orchard.pose_training import upload as pose_upload
from orchard.settings import load_settings

SETTINGS = load_settings(variables=False)
# A copy of the DAG's training params (tests/dags/test_pose_training_dag.py validates with the DAG's own)
SCHEMA = {
    "epochs": Param(200, type="integer", minimum=1, maximum=5000),
    "batch_size": Param(8, type="integer", minimum=1, maximum=128),
    "net_type": Param("resnet_50", type="string", enum=["resnet_50", "resnet_101", "hrnet_w18", "hrnet_w32"]),
    "backbone_weights": Param("", type="string", pattern=r"^$|^pretrained$|^none$|^/.+\.pt$"),
    "train_crop": Param("", type="string", pattern=r"^$|^\d{2,4}x\d{2,4}$"),
}


@pytest.fixture
def clients(aws):
    names = ("s3", "events", "sqs", "batch", "ec2", "iam")
    made = {name: boto3.client(name) for name in names}
    made["s3"].create_bucket(Bucket=SETTINGS.data_bucket)
    demo.create_batch_roles(made["iam"], SETTINGS)
    return made


def spec(**changes) -> pose_infra.BatchSpec:
    base = pose_infra.BatchSpec("g4dn", "SPOT", 16, 3600, SETTINGS.data_bucket)
    return replace(base, **changes)


def quiet(_line: str) -> None:
    pass


def test_ensure_batch_creates_a_gpu_environment_that_scales_to_zero(clients):
    batch = clients["batch"]
    made = pose_infra.ensure_batch(batch, clients["ec2"], SETTINGS, spec(), poll_s=0.1, log=quiet)

    [environment] = batch.describe_compute_environments(computeEnvironments=[made["compute_environment"]])[
        "computeEnvironments"
    ]
    resources = environment["computeResources"]
    assert (resources["minvCpus"], resources["maxvCpus"]) == (0, 16)
    assert resources["type"] == "SPOT" and resources["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert resources["instanceTypes"] == ["g4dn"]
    [definition] = batch.describe_job_definitions(jobDefinitionName=pose_infra.JOB_DEFINITION)[
        "jobDefinitions"
    ]
    container = definition["containerProperties"]
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "10240",
        "GPU": "1",
    }
    # DLC_PROJECT_PATH and OUTPUT_PATH are empty placeholders (each run overrides them; moto drops them)
    assert {"name": "TGT_S3_BUCKET", "value": SETTINGS.data_bucket} in container["environment"]
    assert container["image"].endswith("/orchard/pose-training:" + SETTINGS.image_tag)
    assert not container.get("privileged")
    retry = definition["retryStrategy"]
    rules = retry["evaluateOnExit"]
    # the job's input error (exit 65) is never retried, whatever else matches; a reclaimed spot host is
    assert (rules[0]["onExitCode"], rules[0]["action"].upper()) == ("65", "EXIT")
    assert (rules[1]["onStatusReason"], rules[1]["action"].upper()) == ("Host EC2*", "RETRY")
    assert rules[2]["action"].upper() == "EXIT"
    assert made["instance_type"] == "g4dn.xlarge"


def test_ensure_batch_reuses_what_exists_and_revises_a_changed_definition(clients):
    batch, ec2 = clients["batch"], clients["ec2"]
    first = pose_infra.ensure_batch(batch, ec2, SETTINGS, spec(), poll_s=0.1, log=quiet)
    again = pose_infra.ensure_batch(batch, ec2, SETTINGS, spec(), poll_s=0.1, log=quiet)
    assert again == first  # same environment, queue and definition revision

    updates = []
    with mock.patch.object(batch, "update_compute_environment", side_effect=lambda **kw: updates.append(kw)):
        longer = pose_infra.ensure_batch(
            batch, ec2, SETTINGS, spec(max_runtime_s=7200, max_vcpus=32), poll_s=0.1, log=quiet
        )
    assert longer["job_definition_arn"].endswith(":2") and first["job_definition_arn"].endswith(":1")
    assert longer["compute_environment_arn"] == first["compute_environment_arn"]
    # moto 5.2.5's UpdateComputeEnvironment ignores computeResources: check the request instead
    assert updates == [
        {"computeEnvironment": first["compute_environment"], "computeResources": {"maxvCpus": 32}}
    ]

    on_demand = pose_infra.ensure_batch(
        batch, ec2, SETTINGS, spec(capacity="ON_DEMAND", gpu_family="g5"), poll_s=0.1, log=quiet
    )
    assert on_demand["job_queue"] == "orchard-pose-g5-on-demand-queue"


def test_upload_reaches_the_asset_watchers_trigger_with_its_key(clients):
    s3 = clients["s3"]
    s3.put_bucket_notification_configuration(  # a notification someone else set: must survive
        Bucket=SETTINGS.data_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": clients["sqs"].get_queue_attributes(
                        QueueUrl=clients["sqs"].create_queue(QueueName="other")["QueueUrl"],
                        AttributeNames=["QueueArn"],
                    )["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    for _ in range(2):  # idempotent
        made = pose_infra.ensure_event_path(s3, clients["events"], clients["sqs"], SETTINGS, log=quiet)
    notifications = s3.get_bucket_notification_configuration(Bucket=SETTINGS.data_bucket)
    assert "EventBridgeConfiguration" in notifications and len(notifications["QueueConfigurations"]) == 1
    [target] = clients["events"].list_targets_by_rule(Rule=pose_infra.UPLOAD_RULE)["Targets"]
    assert (target["Id"], target["Arn"]) == (pose_infra.UPLOAD_TARGET_ID, made["queue_arn"])
    policy = json.loads(
        clients["sqs"].get_queue_attributes(QueueUrl=made["queue_url"], AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == made["rule_arn"]

    key = f"{pose_infra.WATCHED_PREFIX}lab-a/mouse.zip"
    s3.put_object(Bucket=SETTINGS.data_bucket, Key="pose-training/projects/notes.txt", Body=b"not a zip")
    s3.put_object(Bucket=SETTINGS.data_bucket, Key="elsewhere/mouse.zip", Body=b"outside the prefix")
    s3.put_object(Bucket=SETTINGS.data_bucket, Key=key, Body=b"zip", Metadata={"epochs": "3"})

    event = asyncio.run(_first_event(pose_infra.upload_queue_url(SETTINGS)))
    asset_events = [{"extra": {"payload": event.payload}}]  # what the triggerer records for the Asset
    assert pose_upload.uploads_in_events(asset_events) == [(SETTINGS.data_bucket, key)]
    params = {
        "project_uri": "",
        "epochs": 200,
        "batch_size": 8,
        "net_type": "resnet_50",
        "backbone_weights": "",
        "train_crop": "",
    }
    run_id = "asset_triggered__2026-11-21T10:00:00+00:00_ab"
    [project] = pose_upload.projects_of_run(params, "pose_training", run_id, asset_events, SETTINGS)
    assert (project["bucket"], project["key"], project["source"]) == (SETTINGS.data_bucket, key, "upload")
    # the upload's version, from the event the watcher received: one training per object version
    etag = s3.head_object(Bucket=SETTINGS.data_bucket, Key=key)["ETag"].strip('"')
    assert project["object_version"] == f"etag:{etag}"
    # the upload's metadata over the param default
    assert pose_upload.project_training(s3, project, params, SCHEMA)["epochs"] == 3
    assert project["output_uri"].startswith(
        f"s3://{SETTINGS.artifacts_bucket}/pose_training/asset-20261121t100000-ab-"
    )
    left = clients["sqs"].receive_message(QueueUrl=made["queue_url"], WaitTimeSeconds=0).get("Messages", [])
    assert left == []  # only the .zip under the prefix was sent, and the trigger consumed it


async def _first_event(queue_url: str):
    """What the DAG's AssetWatcher runs, as the triggerer would (the AWS-style queue URL included)."""
    from orchard.triggers.upload_queue import UploadQueueTrigger

    trigger = UploadQueueTrigger(
        sqs_queue=queue_url, aws_conn_id="aws_default", max_messages=1, waiter_delay=1
    )
    return await asyncio.wait_for(anext(trigger.run()), timeout=30)


def test_choose_projects_and_training_settings():
    watched = "s3://orchard-data/pose-training/projects/"
    assert pose_upload.choose_projects([("b", "k.zip")], "", watched) == [("b", "k.zip", "upload")]
    manual = pose_upload.choose_projects([], "s3://lab-bucket/p/x.zip", watched)
    assert manual == [("lab-bucket", "p/x.zip", "manual")]
    with pytest.raises(
        pose_upload.NoProject, match="upload a zip under s3://orchard-data/pose-training/projects/"
    ):
        pose_upload.choose_projects([], "", watched)
    two = [("b", "1.zip"), ("b", "2.zip")]
    assert pose_upload.choose_projects(two, "", watched) == [(b, k, "upload") for b, k in two]

    params = {
        "epochs": 200,
        "batch_size": 8,
        "net_type": "resnet_50",
        "backbone_weights": "",
        "train_crop": "",
    }
    metadata = {"epochs": "2", "backbone-weights": "none"}
    values = pose_upload.validated_metadata(metadata, SCHEMA, "s3://b/k.zip")
    upload = pose_upload.training_settings(params, values)
    assert upload["epochs"] == 2 and upload["backbone_weights"] == "none" and upload["batch_size"] == 8
    assert pose_upload.training_settings(params, {}) == params
    overrides = pose_upload.container_overrides("b", "k.zip", "s3://out/model/", upload)
    environment = {e["name"]: e["value"] for e in overrides["environment"]}
    assert environment["DLC_PROJECT_PATH"] == "k.zip" and environment["TGT_S3_BUCKET"] == "b"
    assert "DLC_TRAIN_CROP" not in environment  # empty: the image's default


def test_teardown_terminates_the_runs_job_only_while_it_still_runs(clients):
    batch = clients["batch"]
    made = pose_infra.ensure_batch(batch, clients["ec2"], SETTINGS, spec(), poll_s=0.1, log=quiet)
    batch.register_job_definition(
        jobDefinitionName="sleeper",
        type="container",
        containerProperties={
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0",
            "command": ["python", "-c", "import time; time.sleep(60)"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    job = batch.submit_job(jobName="pose_training-run-a", jobQueue=made["job_queue"], jobDefinition="sleeper")
    other = batch.submit_job(
        jobName="pose_training-run-b", jobQueue=made["job_queue"], jobDefinition="sleeper"
    )

    stopped = pose_infra.stop_run_job(batch, made["job_queue"], "pose_training-run-a", "run ended")

    assert stopped == [job["jobId"]]
    for _ in range(100):
        if batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["status"] == "FAILED":
            break
        __import__("time").sleep(0.1)
    states = {
        j["jobId"]: j["status"] for j in batch.describe_jobs(jobs=[job["jobId"], other["jobId"]])["jobs"]
    }
    assert (
        states[job["jobId"]] == "FAILED" and states[other["jobId"]] != "FAILED"
    )  # another run's job untouched
    assert pose_infra.stop_run_job(batch, made["job_queue"], "pose_training-run-a", "again") == []
    batch.terminate_job(jobId=other["jobId"], reason="test over")


def test_the_teardown_stops_each_projects_job_in_the_queue_its_params_name(monkeypatch):
    """stop_run_jobs finds the jobs from the params and the projects' names alone (no setup's XCom)."""
    asked = []

    def stop(batch, queue, name, reason):
        asked.append((batch, queue, name))
        return ["job-1"] if name == "run-a" else []

    monkeypatch.setattr(pose_infra.aws, "client", lambda service: f"{service} client")
    monkeypatch.setattr(pose_infra, "stop_run_job", stop)
    projects = [{"job_name": "run-a"}, {"job_name": "run-b"}]

    stopped = pose_infra.stop_run_jobs(projects, {"gpu_family": "g5", "capacity": "ON_DEMAND"}, log=quiet)

    assert stopped == ["job-1"]
    queue = "orchard-pose-g5-on-demand-queue"
    assert asked == [("batch client", queue, "run-a"), ("batch client", queue, "run-b")]


def test_the_event_path_setup_reads_the_settings_once_and_opens_one_session(clients, reads):
    """Its three services share one session and one settings read (was: 4 reads, 3 sessions)."""
    made = pose_infra.ensure_watched_event_path(SETTINGS)

    assert made["queue_url"].endswith(f"/{pose_infra.UPLOAD_QUEUE}")
    assert clients["events"].list_targets_by_rule(Rule=pose_infra.UPLOAD_RULE)["Targets"]
    assert "EventBridgeConfiguration" in clients["s3"].get_bucket_notification_configuration(
        Bucket=SETTINGS.data_bucket
    )
    assert (reads.settings, reads.sessions) == (1, 1)


def test_the_batch_setup_reads_the_settings_once_and_opens_one_session(clients, reads):
    """Batch and EC2 (default subnets) share one session and one settings read (was: 3 reads, 2 sessions)."""
    params = {"gpu_family": "g4dn", "capacity": "SPOT", "max_vcpus": 16, "max_runtime_minutes": 60}
    made = pose_infra.ensure_run_batch({**params, "poll_seconds": 1})

    [queue] = clients["batch"].describe_job_queues(jobQueues=[made["job_queue"]])["jobQueues"]
    assert queue["status"] == "VALID" and made["job_definition_arn"].endswith(":1")
    assert (reads.settings, reads.sessions) == (1, 1)
