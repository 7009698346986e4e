"""pose_training's DAG wiring: live settings in tasks, the event path as setup, one mapped project per upload,
upload metadata validated with the DAG's own Param schema, buckets from the settings.

The tasks' Python callables run here directly (no scheduler) against the sandbox; the whole DAG runs in
tests/e2e/test_pose_training.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from airflow.sdk.exceptions import AirflowFailException

from local_aws.demo_data import pose_training as demo
from orchard import naming
from orchard.pose_training import infra as pose_infra
from orchard.pose_training import upload as pose_upload
from orchard.settings import load_settings

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "pose_training.py"
RUN_ID = "asset_triggered__2026-12-06T10:00:00+00:00_xy"
PARAMS = {
    "project_uri": "",
    "epochs": 200,
    "batch_size": 8,
    "net_type": "resnet_50",
    "backbone_weights": "",
    "train_crop": "",
    "max_zip_mb": 2048,
}


def parse_dag():
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(DAG_FILE), bundle_path=DAG_FILE.parent)
    assert not bag.import_errors, bag.import_errors
    return bag.dags["pose_training"]


@pytest.fixture(scope="module")
def pose_dag():
    return parse_dag()


@pytest.fixture
def variables(monkeypatch):
    """Airflow Variables as a deployment sets them (orchard_<field>), none of them in the environment."""
    import orchard.settings

    values: dict[str, str] = {}
    monkeypatch.setattr(orchard.settings, "_airflow_variable", values.get)
    for name in ("ORCHARD_DATA_BUCKET", "ORCHARD_ARTIFACTS_BUCKET", "ORCHARD_REPORTS_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    return values


def upload_event(bucket: str, key: str) -> dict:
    """An Asset event as the watcher records it: the SQS message of one EventBridge "Object Created"."""
    body = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }
    return {"extra": {"payload": {"message_batch": [{"Body": json.dumps(body)}]}}}


def call(pose_dag, task_id: str, **kwargs):
    return pose_dag.task_dict[task_id].python_callable(**kwargs)


def test_tasks_read_the_live_settings_with_airflow_variables(pose_dag, variables):
    variables["orchard_artifacts_bucket"] = "lab-models"
    run = SimpleNamespace(dag_id="pose_training", run_id=RUN_ID)
    events = {"uploads": [upload_event("orchard-data", "pose-training/projects/a.zip")]}

    [project] = call(pose_dag, "find_projects", params=PARAMS, dag_run=run, triggering_asset_events=events)

    assert project["output_uri"].startswith("s3://lab-models/pose_training/")  # the Variable, not the default


def test_every_upload_of_a_run_is_its_own_mapped_project(pose_dag, variables):
    run = SimpleNamespace(dag_id="pose_training", run_id=RUN_ID)
    keys = [
        "pose-training/projects/lab-a/mouse.zip",
        "pose-training/projects/lab-b/mouse.zip",
        "pose-training/projects/rat.zip",
    ]
    # Airflow folds the events queued since the last run into one run: here two events, three uploads
    events = {
        "uploads": [
            upload_event("orchard-data", keys[0]),
            {
                "extra": {
                    "payload": {
                        "message_batch": [
                            upload_event("orchard-data", k)["extra"]["payload"]["message_batch"][0]
                            for k in keys[1:]
                        ]
                    }
                }
            },
        ]
    }

    projects = call(pose_dag, "find_projects", params=PARAMS, dag_run=run, triggering_asset_events=events)

    assert [p["key"] for p in projects] == keys and {p["source"] for p in projects} == {"upload"}
    assert len({p["job_name"] for p in projects}) == 3 and len({p["output_uri"] for p in projects}) == 3
    assert projects[0]["job_name"] == naming.resource_name(
        "batch_job", "pose_training", RUN_ID, f"s3://orchard-data/{keys[0]}"
    )
    # the same run and upload give the same names: a retried task finds the job it started
    again = call(pose_dag, "find_projects", params=PARAMS, dag_run=run, triggering_asset_events=events)
    assert again == projects

    group = pose_dag.task_group_dict["project"]
    assert type(group).__name__ == "MappedTaskGroup"
    assert {t.task_id for t in group} == {"project.validate_project", "project.train", "project.check_export"}
    assert "find_projects" in pose_dag.task_dict["project.validate_project"].upstream_task_ids
    # one project failing validation must not keep the others from their GPU setup
    assert pose_dag.task_dict["ensure_batch"].trigger_rule == "one_success"
    assert pose_dag.task_dict["stop_training"].is_teardown
    # issue 14: a teardown that fails (a GPU job may still bill) fails the run instead of leaving it green
    assert pose_dag.task_dict["stop_training"].on_failure_fail_dagrun is True
    # it finds the run's jobs from the params and names alone, not from ensure_batch's XCom
    assert [arg.operator.task_id for arg in pose_dag.task_dict["stop_training"].op_args] == ["find_projects"]


def test_upload_metadata_is_validated_with_the_dags_param_schema(pose_dag):
    schema = {name: pose_dag.params.get_param(name) for name in pose_upload.METADATA_SETTINGS.values()}
    where = "s3://orchard-data/pose-training/projects/a.zip"

    metadata = {"epochs": "50", "batch-size": "16", "train-crop": "96x80"}
    good = pose_upload.validated_metadata(metadata, schema, where)
    assert good == {"epochs": 50, "batch_size": 16, "train_crop": "96x80"}
    bad = [
        ({"epochs": "many"}, "epochs"),
        ({"epochs": "0"}, "epochs"),
        ({"batch-size": "500"}, "batch-size"),
        ({"net-type": "resnet_9000"}, "net-type"),
        ({"train-crop": "huge"}, "train-crop"),
        ({"backbone-weights": "imagenet"}, "backbone-weights"),
    ]
    for metadata, key in bad:
        with pytest.raises(pose_upload.BadMetadata, match=rf"upload metadata {key}=.* x-amz-meta-{key}"):
            pose_upload.validated_metadata(metadata, schema, where)
    assert pose_dag.params.get_param("epochs").value == 200  # validating did not change the DAG's defaults


def test_an_upload_with_bad_metadata_fails_its_validation_at_once_naming_the_key(pose_dag, aws, variables):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="orchard-data")
    key = f"{pose_infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    s3.put_object(
        Bucket="orchard-data", Key=key, Body=demo.project_zip(), Metadata={"net-type": "resnet_9000"}
    )
    run = SimpleNamespace(dag_id="pose_training", run_id=RUN_ID)
    [project] = call(
        pose_dag,
        "find_projects",
        params=PARAMS,
        dag_run=run,
        triggering_asset_events={"uploads": [upload_event("orchard-data", key)]},
    )

    with pytest.raises(AirflowFailException, match="upload metadata net-type='resnet_9000'"):
        call(pose_dag, "project.validate_project", project=project, params=PARAMS, dag=pose_dag)

    s3.put_object(Bucket="orchard-data", Key=key, Body=demo.project_zip(), Metadata={"epochs": "3"})
    artifacts = load_settings().artifacts_bucket
    s3.create_bucket(Bucket=artifacts)  # where the upload's one-training marker goes
    valid = call(
        pose_dag, "project.validate_project", project=project, params=PARAMS, dag=pose_dag, run_id=RUN_ID
    )
    environment = {e["name"]: e["value"] for e in valid["container_overrides"]["environment"]}
    assert environment["DLC_EPOCHS"] == "3" and environment["OUTPUT_PATH"] == project["output_uri"]
    assert environment["DLC_MAX_UNZIPPED_MB"] == "8192" and environment["DLC_MAX_ZIP_RATIO"] == "100"
    [marker] = s3.list_objects_v2(Bucket=artifacts, Prefix=pose_upload.CLAIMS_PREFIX)["Contents"]
    assert json.loads(s3.get_object(Bucket=artifacts, Key=marker["Key"])["Body"].read())["run_id"] == RUN_ID


def test_doc_steps_are_numbered_in_order_and_name_only_tasks_that_exist(pose_dag):
    steps = re.findall(r"^(\d+)\. (.*)$", pose_dag.doc_md, re.MULTILINE)
    assert [int(number) for number, _ in steps] == list(range(1, len(steps) + 1))
    named = [name for _, text in steps for name in re.findall(r"`([a-z_.]+)`", text.split(":")[0])]
    assert "ensure_event_path" in named and set(named) <= set(pose_dag.task_dict), named
    assert pose_infra.INFRA_COMMAND in pose_dag.doc_md  # the one-time command, for uploads before any run


def test_the_event_path_is_set_up_by_the_dag_before_anything_else(pose_dag, aws, variables):
    assert pose_dag.task_dict["find_projects"].upstream_task_ids == {"ensure_event_path"}
    boto3.client("s3").create_bucket(Bucket="orchard-data")

    made = call(pose_dag, "ensure_event_path")

    assert made["queue_url"].endswith(f"/123456789012/{pose_infra.UPLOAD_QUEUE}")
    assert "EventBridgeConfiguration" in boto3.client("s3").get_bucket_notification_configuration(
        Bucket="orchard-data"
    )
    [target] = boto3.client("events").list_targets_by_rule(Rule=pose_infra.UPLOAD_RULE)["Targets"]
    assert target["Arn"] == made["queue_arn"]


def test_a_variable_moving_the_upload_path_away_from_the_watched_queue_fails_the_run(
    pose_dag, aws, variables
):
    variables["orchard_data_bucket"] = "lab-uploads"  # the watcher, built at parse time, watches orchard-data
    boto3.client("s3").create_bucket(Bucket="lab-uploads")

    expected = r"uploads would start no run.*ORCHARD_DATA_BUCKET=lab-uploads"
    with pytest.raises(AirflowFailException, match=expected):
        call(pose_dag, "ensure_event_path")


def test_assets_and_defaults_name_the_settings_buckets(monkeypatch):
    monkeypatch.setenv("ORCHARD_DATA_BUCKET", "lab-uploads")
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", "lab-models")
    dag = parse_dag()

    uploads = dag.timetable.asset_condition
    assert uploads.uri.rstrip("/") == f"s3://lab-uploads/{pose_infra.WATCHED_PREFIX}".rstrip("/")
    [watcher] = uploads.watchers
    assert watcher.trigger.serialize()[1]["sqs_queue"].endswith(f"/123456789012/{pose_infra.UPLOAD_QUEUE}")
    [models] = [outlet for task in dag.tasks for outlet in task.outlets]
    assert models.uri.rstrip("/") == "s3://lab-models/pose_training"
    shown = json.dumps({k: dag.params.get_param(k).value for k in dag.params}) + dag.doc_md
    assert "lab-uploads" in dag.doc_md and "orchard-data" not in shown and "orchard-artifacts" not in shown
