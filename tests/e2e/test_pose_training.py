"""pose_training end to end on the sandbox: upload → run → exported model, metrics and report in S3."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from local_aws.demo_data import pose_training as demo
from local_aws.iam_setup import create_pipeline_roles, settings_buckets
from orchard.pose_training import infra as pose_infra
from orchard.settings import load_settings

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "pose_training.py"
SETTINGS = load_settings(variables=False)
MODELS_BUCKET = "lab-models-from-a-variable"
FAST = {"epochs": 2, "batch_size": 4, "backbone_weights": "none", "train_crop": "96x80", "poll_seconds": 2}


@pytest.fixture
def pose_dag(aws, airflow_db):
    from airflow.dag_processing.dagbag import BundleDagBag

    s3 = boto3.client("s3")
    for bucket in {SETTINGS.data_bucket, SETTINGS.artifacts_bucket, SETTINGS.reports_bucket}:
        s3.create_bucket(Bucket=bucket)
    demo.create_batch_roles(boto3.client("iam"), SETTINGS)
    bag = BundleDagBag(dag_folder=str(DAG_FILE), bundle_path=DAG_FILE.parent)
    assert not bag.import_errors
    return bag.dags["pose_training"]


def test_uploaded_project_trains_on_the_dags_defaults_and_its_model_metrics_and_report_land_in_s3(
    aws, pose_dag, inline_triggers, capfd, monkeypatch
):
    """The DAG's own param defaults (issue 13.1): nothing in the run's conf. Only the data is the sandbox's:
    the lab's upload carries its training settings as S3 object metadata (`demo.SANDBOX_TRAINING`: 2
    epochs from scratch on 96x80 crops, what a CPU trains offline), exactly as `make demo` uploads it.
    `dag.test()` cannot create an Asset-triggered run, so the upload reaches `find_projects` as the
    watcher's event would (`uploads_in_events`); the same upload's second event trains nothing."""
    from orchard.pose_training import upload as pose_upload

    s3 = boto3.client("s3")
    # an Airflow Variable (environment backend), not an ORCHARD_* variable: only tasks that read the live
    # settings see it; the DAG parsed without it (its Assets name the default bucket)
    monkeypatch.delenv("ORCHARD_ARTIFACTS_BUCKET", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_ORCHARD_ARTIFACTS_BUCKET", MODELS_BUCKET)
    s3.create_bucket(Bucket=MODELS_BUCKET)
    # the deployment's policies name its buckets (include/iam names the defaults): render them again
    create_pipeline_roles(
        aws.url, ["pose_training"], buckets={**settings_buckets(SETTINGS), "orchard-artifacts": MODELS_BUCKET}
    )
    key = f"{pose_infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    s3.put_object(
        Bucket=SETTINGS.data_bucket, Key=key, Body=demo.project_zip(), Metadata=demo.SANDBOX_TRAINING
    )
    monkeypatch.setattr(pose_upload, "uploads_in_events", lambda events: [(SETTINGS.data_bucket, key)])

    run = pose_dag.test()  # every param at its default
    task_log = capfd.readouterr().out

    assert run.state == "success", task_log[-5000:]
    assert [(t.__class__.__name__, e.payload["status"]) for t, e in inline_triggers] == [
        ("BatchJobWaitTrigger", "success")
    ]
    assert "Epoch 2/2" in task_log  # the job's own CloudWatch lines, in the train task's log
    [job] = boto3.client("batch").list_jobs(
        jobQueue="orchard-pose-g4dn-spot-queue", filters=[{"name": "JOB_NAME", "values": ["pose_training*"]}]
    )["jobSummaryList"]
    assert job["status"] == "SUCCEEDED"

    # the Variable's bucket won: the default artifacts bucket holds only the release's deployed job code
    default_bucket = s3.list_objects_v2(Bucket=SETTINGS.artifacts_bucket).get("Contents", [])
    assert [o["Key"] for o in default_bucket if not o["Key"].startswith("job-code/")] == []
    artifacts = {o["Key"] for o in s3.list_objects_v2(Bucket=MODELS_BUCKET)["Contents"]}
    [manifest_key] = [k for k in artifacts if k.endswith("model/manifest.json")]
    manifest = json.loads(s3.get_object(Bucket=MODELS_BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["project"] == f"s3://{SETTINGS.data_bucket}/{key}" and manifest["epochs"] == 2
    assert manifest["metrics"]["test rmse"] > 0
    assert any(k.endswith(".pt") and "/model/model/" in k for k in artifacts)
    # DeepLabCut's evaluation plots (plotting=True): train and test images, exported and listed
    plots = manifest["evaluation_plots"]
    assert plots["train"] and plots["test"] and set(plots["train"] + plots["test"]) <= artifacts
    [report_key] = [k for k in artifacts if k.endswith("report.md")]
    report = s3.get_object(Bucket=MODELS_BUCKET, Key=report_key)["Body"].read().decode()
    assert (
        "test rmse" in report
        and "figures/learning_curve.png" in report
        and "console.aws.amazon.com" in report
    )
    assert "figures/evaluation_train_1.png" in report and "figures/evaluation_test_1.png" in report
    assert "g4dn.xlarge" in report  # the cost line

    # the same upload delivered again (EventBridge is at-least-once): acknowledged and skipped, no GPU job
    again = pose_dag.test()
    assert again.state == "success"
    states = {ti.task_id: ti.state for ti in again.get_task_instances()}
    assert states["project.validate_project"] == "skipped" and states["project.train"] == "skipped"
    assert "is already trained by run" in capfd.readouterr().out
    jobs = boto3.client("batch").list_jobs(
        jobQueue="orchard-pose-g4dn-spot-queue", filters=[{"name": "JOB_NAME", "values": ["pose_training*"]}]
    )["jobSummaryList"]
    assert len(jobs) == 1


def test_a_broken_project_fails_in_validation_before_any_batch_resource(pose_dag):
    s3 = boto3.client("s3")
    key = f"{pose_infra.WATCHED_PREFIX}broken.zip"
    s3.put_object(Bucket=SETTINGS.data_bucket, Key=key, Body=b"not a zip at all")

    run = pose_dag.test(run_conf={"project_uri": f"s3://{SETTINGS.data_bucket}/{key}", **FAST})

    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["project.validate_project"] == "failed" and states["project.train"] == "upstream_failed"
    assert states["ensure_batch"] == "upstream_failed"
    assert (
        boto3.client("batch").describe_job_queues()["jobQueues"] == []
    )  # no queue, no job: nothing billable
    assert s3.get_object(Bucket=SETTINGS.data_bucket, Key=key)["Body"].read() == b"not a zip at all"  # kept


def test_every_upload_folded_into_one_run_trains_and_a_bad_one_fails_alone(pose_dag, monkeypatch):
    """Airflow folds the Asset events queued since the last run into one run: each upload trains on its own.

    `dag.test()` cannot create an asset-triggered run, so the run's uploads are what the watcher's events
    would carry, handed to `find_projects` through `uploads_in_events`; everything after is the real DAG.
    """
    from orchard.pose_training import upload as pose_upload

    s3 = boto3.client("s3")
    good = f"{pose_infra.WATCHED_PREFIX}lab-a/{demo.PROJECT}.zip"
    bad = f"{pose_infra.WATCHED_PREFIX}lab-b/broken.zip"
    s3.put_object(
        Bucket=SETTINGS.data_bucket, Key=good, Body=demo.project_zip(), Metadata=demo.SANDBOX_TRAINING
    )
    s3.put_object(
        Bucket=SETTINGS.data_bucket,
        Key=bad,
        Body=demo.project_zip(),
        Metadata={**demo.SANDBOX_TRAINING, "epochs": "lots"},
    )
    uploads = [(SETTINGS.data_bucket, good), (SETTINGS.data_bucket, bad)]
    monkeypatch.setattr(pose_upload, "uploads_in_events", lambda events: uploads)

    run = pose_dag.test(run_conf={"poll_seconds": 2})

    assert run.state == "failed"  # one project failed: the run says so
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("project.validate_project", 0)] == "success"
    assert states[("project.validate_project", 1)] == "failed"  # epochs=lots, named in its log
    assert states[("project.train", 0)] == "success" and states[("project.check_export", 0)] == "success"
    assert states[("project.train", 1)] == "upstream_failed"
    artifacts = {o["Key"] for o in s3.list_objects_v2(Bucket=SETTINGS.artifacts_bucket)["Contents"]}
    [manifest_key] = [k for k in artifacts if k.endswith("model/manifest.json")]
    manifest = json.loads(s3.get_object(Bucket=SETTINGS.artifacts_bucket, Key=manifest_key)["Body"].read())
    assert manifest["project"] == f"s3://{SETTINGS.data_bucket}/{good}" and manifest["epochs"] == 2
    assert f"/{pose_upload.project_slug(good)}/model/" in manifest_key
    assert [k for k in artifacts if k.endswith("report.md")]


@pytest.mark.faults
def test_train_failing_after_submit_reattaches_on_retry_and_the_teardown_leaves_no_job_running(
    aws, pose_dag, monkeypatch
):
    """Issue 14, one cell of the matrix: `train` fails after its AWS call (SubmitJob) on every try. The
    retries reattach (one job in all), the run fails, and the ALL_DONE teardown terminates the job."""
    from orchard.operators.batch import ReattachingBatchOperator

    s3 = boto3.client("s3")
    key = f"{pose_infra.WATCHED_PREFIX}{demo.PROJECT}.zip"
    s3.put_object(Bucket=SETTINGS.data_bucket, Key=key, Body=demo.project_zip())

    def fail_after_submit(self, context):
        self.poll_interval, self.max_retries = int(self.poll_interval), int(self.max_retries)
        self.submit_job(context)
        raise RuntimeError("injected fault: the worker was lost right after SubmitJob")

    monkeypatch.setattr(ReattachingBatchOperator, "execute", fail_after_submit)
    run = pose_dag.test(run_conf={"project_uri": f"s3://{SETTINGS.data_bucket}/{key}", **FAST})

    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["project.train"] == "failed" and states["stop_training"] == "success"
    batch = boto3.client("batch")
    jobs = batch.list_jobs(
        jobQueue="orchard-pose-g4dn-spot-queue", filters=[{"name": "JOB_NAME", "values": ["pose_training*"]}]
    )["jobSummaryList"]
    assert len(jobs) == 1  # each retry found the job the first try submitted
    [job] = batch.describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"]
    assert job["status"] in ("FAILED", "SUCCEEDED") or "pose_training run ended" in job.get(
        "statusReason", ""
    )
