"""pose_training's demo data: its upload is what starts the run (the demo waits, it does not trigger)."""

from __future__ import annotations

import json

import boto3

from local_aws import sandbox_client
from local_aws.demo_data import pose_training as demo
from local_aws.stack import load_settings, triggered_by_upload
from orchard.pose_training import infra as pose_infra


def test_only_dags_whose_demo_module_says_so_wait_for_their_upload():
    assert triggered_by_upload(["pose_training", "a_dag_without_demo_data"]) == ["pose_training"]


def test_the_demo_upload_reaches_the_watched_queue_with_its_training_settings(aws):
    settings = load_settings()
    s3 = sandbox_client("s3", aws.url)
    s3.create_bucket(Bucket=settings.data_bucket)

    conf = demo.upload(s3, settings)

    key = f"{pose_infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    assert conf["project_uri"] == f"s3://{settings.data_bucket}/{key}" and conf["epochs"] == 2
    head = s3.head_object(Bucket=settings.data_bucket, Key=key)
    assert head["Metadata"] == demo.SANDBOX_TRAINING
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(QueueUrl=pose_infra.upload_queue_url(settings))["Messages"]
    assert json.loads(message["Body"])["detail"]["object"]["key"] == key
