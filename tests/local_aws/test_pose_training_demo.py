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


def test_the_run_its_upload_starts_polls_at_the_demos_pace(aws, tmp_path):
    """The upload's run has no conf, so it takes the form's defaults: the demo makes them its conf (2 s polls
    of the sandbox's jobs; the form's own 30 s, meant for AWS, left the Batch job's end unseen up to 30 s)."""
    from local_aws.stack.demo import upload_runs_take_the_demo_conf
    from local_aws.stack.environment import airflow_env
    from orchard import params

    settings = load_settings()
    s3 = sandbox_client("s3", aws.url)
    s3.create_bucket(Bucket=settings.data_bucket)
    confs = {"pose_training": demo.upload(s3, settings), "fruit_features": {"poll_seconds": 2}}
    db_path = tmp_path / "demo.db"

    upload_runs_take_the_demo_conf(db_path, confs, triggered_by_upload(list(confs)))

    env = airflow_env(tmp_path, tmp_path, db_path=db_path, sandbox_url=aws.url)  # the DAG processor's
    assert params.default_overrides("pose_training", env) == confs["pose_training"]
    assert params.default_overrides("pose_training", env)["poll_seconds"] == 2
    assert params.default_overrides("fruit_features", env) == {}  # triggered with its conf: form unchanged
