"""fruit_features end to end through the sandbox: ONNX export job, two EMR clusters (scaling test), report."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from local_aws.demo_data.fruit_features import generate
from orchard.settings import load_settings
from tests.dag_files import load_dag

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruit_features.py"
SETTINGS = load_settings(variables=False)  # the buckets and the one region the DAG uses
DATA, ARTIFACTS = SETTINGS.data_bucket, SETTINGS.artifacts_bucket
# Under the pipeline's own prefix: its roles (include/iam/fruit_features*.json) may use nothing else.
IMAGES = f"s3://{DATA}/fruit_features/e2e/images/"
OUTPUT = f"s3://{DATA}/fruit_features/features/"


# The sandbox's clusters and jobs are ready in seconds: every run polls them each second (the one poll setting)
FAST = {"poll_seconds": 1}


def fruit_dag():
    dag = load_dag(DAG_FILE)
    for task in dag.tasks:
        task.retries = 0  # dag.test() sleeps through retry delays: a failure should end the test at once
    return dag


def keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def fruit_photos(aws):
    s3 = boto3.client("s3")
    for bucket in (DATA, ARTIFACTS):
        s3.create_bucket(Bucket=bucket)
    files, corrupt = generate(16, seed=1, size=128)
    for key, body in files.items():
        s3.put_object(Bucket=DATA, Key=f"fruit_features/e2e/images/{key}", Body=body)
    return files, corrupt


def test_the_dags_own_defaults_run_through_the_sandbox(fruit_photos, airflow_db, inline_triggers):
    """Every param at the DAG's default (core_node_counts=[2], pca_variance 0.9, efficientnet_lite0...),
    only the data's place and the poll pace changed: issue 13.1 (the default single scaling point failed in publish_report)."""
    files, corrupt = fruit_photos
    dag = fruit_dag()
    nodes_default = dag.params["core_node_counts"]

    run = dag.test(run_conf={"images_prefix": IMAGES, "output_prefix": OUTPUT, **FAST})

    assert run.state == "success"
    triggers = {type(trigger).__name__ for trigger, _ in inline_triggers}
    # The waits deferred (the step sensor finds its step already COMPLETED after the add-steps wait). dag.test()
    # gives a trigger no task instance: each resumed its task (execute_complete), none ended it itself.
    assert {"OrchardSageMakerTrigger", "EmrClusterReadyTrigger", "EmrAddStepsLogTrigger"} <= triggers
    # The step's wait logged its lines while deferred (from the LogUri, orchard.triggers.emr_step).
    assert all(
        event.payload.get("log_printed")
        for trigger, event in inline_triggers
        if "Log" in type(trigger).__name__
    )
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["scaling_run.terminate_cluster"] == states["stop_export"] == "success"
    s3 = boto3.client("s3")
    # The model was exported once, by the processing job, with what it measured against torch.
    [model_json] = [
        k
        for k in keys(s3, ARTIFACTS, "fruit_features/models/efficientnet_lite0/")
        if k.endswith("model.json")
    ]
    export = json.loads(s3.get_object(Bucket=ARTIFACTS, Key=model_json)["Body"].read())
    assert export["model"] == "efficientnet_lite0" and export["max_abs_diff"] < 1e-3
    # Each scaling point wrote parquet rows for the readable images only, and listed the corrupt ones.
    readable = len(files) - len(corrupt) - 1  # minus README.txt
    outputs = keys(s3, DATA, "fruit_features/features/")
    for nodes in nodes_default:
        [metrics_key] = [k for k in outputs if k.endswith(f"core_nodes={nodes}/metrics.json")]
        metrics = json.loads(s3.get_object(Bucket=DATA, Key=metrics_key)["Body"].read())
        assert metrics["images_readable"] == readable
        assert sorted(item["path"] for item in metrics["corrupt"]) == corrupt
        parts = [k for k in outputs if f"core_nodes={nodes}/features/" in k and k.endswith(".parquet")]
        assert parts
    rows = sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=DATA, Key=k)["Body"].read())).num_rows
        for k in outputs
        if f"core_nodes={nodes_default[0]}/features/" in k and k.endswith(".parquet")
    )
    assert rows == readable
    # Every cluster was terminated by the teardown.
    emr = boto3.client("emr", region_name=SETTINGS.region)  # the run's one region
    clusters = emr.list_clusters()["Clusters"]
    assert len(clusters) == len(nodes_default)
    assert {c["Status"]["State"] for c in clusters} <= {"TERMINATED", "TERMINATING"}
    # The report names the model, holds the scaling table and the figures.
    report_keys = keys(s3, ARTIFACTS, "reports/fruit_features/")
    report = json.loads(
        s3.get_object(Bucket=ARTIFACTS, Key=next(k for k in report_keys if k.endswith("report.json")))[
            "Body"
        ].read()
    )
    assert {"figures/explained_variance.png", "figures/pca_scatter.png", "figures/speedup.png"} <= set(
        report["figures"]
    )
    markdown = (
        s3.get_object(Bucket=ARTIFACTS, Key=next(k for k in report_keys if k.endswith("report.md")))["Body"]
        .read()
        .decode()
    )
    assert "efficientnet_lite0" in markdown and "Horizontal scaling" in markdown and "local[2]" in markdown
    assert report["metrics"]["rows written (readable images)"] == readable
    assert report["cost_usd"] > 0
    keep_report(s3, report_keys)


def test_images_in_a_bucket_of_another_region_fail_check_inputs_before_anything_billable(
    aws, airflow_db, capfd
):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=DATA)
    elsewhere = "eu-central-1" if SETTINGS.region != "eu-central-1" else "us-west-2"
    s3.create_bucket(
        Bucket="fruit-photos-elsewhere", CreateBucketConfiguration={"LocationConstraint": elsewhere}
    )
    files, _ = generate(4, seed=2, size=64)
    for key, body in files.items():
        s3.put_object(Bucket="fruit-photos-elsewhere", Key=f"images/{key}", Body=body)
    dag = fruit_dag()

    run = dag.test(
        run_conf={"images_prefix": "s3://fruit-photos-elsewhere/images/", "output_prefix": OUTPUT, **FAST}
    )

    task_log = "".join(capfd.readouterr())
    assert run.state == "failed"
    assert f"bucket fruit-photos-elsewhere (images_prefix) is in {elsewhere}" in task_log, task_log[-3000:]
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["check_inputs"] == "failed"
    assert states.get("export_model") != "success"
    assert boto3.client("emr", region_name=SETTINGS.region).list_clusters()["Clusters"] == []
    jobs = boto3.client("sagemaker", region_name=SETTINGS.region).list_processing_jobs()
    assert jobs["ProcessingJobSummaries"] == []


@pytest.mark.faults
@pytest.mark.parametrize("failing", ["create_cluster", "extract"])
def test_a_task_failing_after_its_emr_call_leaves_no_live_cluster_and_fails_the_run(
    failing, fruit_photos, airflow_db, inline_triggers, monkeypatch
):
    """Issue 14.1, one pipeline's cells: create_cluster failing right after RunJobFlow (its id lost: no XCom)
    and extract failing right after AddJobFlowSteps. The teardown finds the cluster by name and ends it."""
    from orchard.fruit_features import clusters
    from orchard.fruit_features.plan import model_location

    s3 = boto3.client("s3")
    model = model_location(SETTINGS, "efficientnet_lite0")  # already exported: no export job in this test
    info = b'{"model": "m", "weights": "w", "max_abs_diff": 0}'
    for name, body in (("model.onnx", b"onnx"), ("model.json", info)):
        s3.put_object(Bucket=ARTIFACTS, Key=model["prefix"].split("/", 3)[3] + name, Body=body)

    def create_then_fail(self, context):
        cluster_id = self.hook.create_job_flow(self.job_flow_overrides)["JobFlowId"]
        raise RuntimeError(f"injected after RunJobFlow ({cluster_id})")

    def add_then_fail(self, context):
        self.hook.conn.add_job_flow_steps(JobFlowId=self.job_flow_id, Steps=self.steps)
        raise RuntimeError("injected after AddJobFlowSteps")

    if failing == "create_cluster":
        monkeypatch.setattr(clusters.OrchardEmrCreateJobFlowOperator, "execute", create_then_fail)
    else:
        monkeypatch.setattr(clusters.OrchardEmrAddStepsOperator, "execute", add_then_fail)
    dag = fruit_dag()

    run = dag.test(run_conf={"images_prefix": IMAGES, "output_prefix": OUTPUT, **FAST})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed" and states[f"scaling_run.{failing}"] == "failed"
    assert states["scaling_run.terminate_cluster"] == "success"
    emr = boto3.client("emr", region_name=SETTINGS.region)
    assert len(emr.list_clusters()["Clusters"]) == 1  # RunJobFlow once
    assert emr.list_clusters(ClusterStates=list(clusters.ACTIVE_STATES))["Clusters"] == []


def keep_report(s3, report_keys: list[str]) -> None:
    """FRUIT_FEATURES_REPORT_DIR=<folder>: keep the report and its figures there to look at."""
    folder = os.environ.get("FRUIT_FEATURES_REPORT_DIR")
    for key in report_keys if folder else []:
        target = Path(folder) / key.split("/", 3)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())
