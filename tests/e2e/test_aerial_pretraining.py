"""aerial_pretraining end to end on the sandbox: prepare → DINO pretrain → two probes → gate → report.

Runs the real DAG file with the demo's tiny ViT on generated BigEarthNet-format data, once with a gate the
new backbone passes (a model package is registered) and once with one it cannot pass (the run still
succeeds, with a clear "not promoted" outcome and nothing registered).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from tests.dag_files import load_dag
from tests.e2e.approvals import a_person_answering

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "aerial_pretraining.py"
PATCHES = 60


@pytest.fixture
def demo(aws):
    from local_aws.demo_data import aerial_pretraining as demo_data
    from orchard.settings import load_settings

    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    for bucket in {settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket}:
        s3.create_bucket(Bucket=bucket)
    conf = demo_data.upload(s3, settings, patches=PATCHES)
    return settings, {**conf, "poll_seconds": 1, "probe_epochs": 10}


def run_dag(conf: dict):
    dag = load_dag(DAG_FILE)
    for task in dag.tasks:
        task.retries = 0  # fail fast: the test is about the happy paths, retries have their own tests
    return dag.test(run_conf=conf)


def xcom(run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .first()
        )
        if row is None or not isinstance(row.value, str):
            return None if row is None else row.value
        try:
            return json.loads(row.value)
        except json.JSONDecodeError:
            return row.value


def read_tar_member(s3, uri: str, member: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        return archive.extractfile(member).read()


def test_promoted_when_the_gate_passes(demo, airflow_db, inline_triggers, capfd):
    settings, conf = demo
    run = run_dag({**conf, "promotion_margin": -1.0})
    task_log = capfd.readouterr().out
    assert run.state == "success", task_log[-3000:]
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")

    # Every SageMaker wait deferred and resumed; the job logs were printed after the deferral.
    kinds = sorted(e.payload["status"] for _, e in inline_triggers)
    assert kinds == ["success"] * 4
    assert "[prepare] " in task_log and "[dino] epoch_end=1" in task_log and "[probe] test_mAP=" in task_log

    prepared = xcom(run, "prepare_dataset")["Processing"]
    dataset = (
        prepared["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
        .removeprefix("s3://")
        .split("/", 1)
    )
    summary = json.loads(s3.get_object(Bucket=dataset[0], Key=dataset[1] + "summary.json")["Body"].read())
    assert summary["excluded"] == {"seasonal_snow": 3, "cloud_and_shadow": 3, "no_ben19_label": 1}
    assert summary["patches"] == PATCHES

    pretrained = xcom(run, "pretrain")["Training"]
    assert pretrained["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"] for m in pretrained["FinalMetricDataList"]} >= {
        "train:loss",
        "train:lr",
        "train:epoch_loss",
    }
    history = json.loads(
        read_tar_member(
            s3,
            pretrained["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz"),
            "history.json",
        )
    )
    assert [h["epoch"] for h in history] == [0, 1]
    checkpoints = s3.list_objects_v2(
        Bucket=settings.artifacts_bucket, Prefix=pretrained["CheckpointConfig"]["S3Uri"].split("/", 3)[3]
    )
    assert any(o["Key"].endswith("/checkpoint.pth") for o in checkpoints["Contents"])

    evaluation = xcom(run, "evaluate")
    bucket, key = evaluation["evaluation_uri"].removeprefix("s3://").split("/", 1)
    results = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert set(results) == {"aerial-dino", "baseline"}
    for metrics in results.values():
        assert 0 < metrics["macro_mAP"] <= 1 and len(metrics["per_class_AP"]) == 19

    # the outcome travels as register_model's return value (an XCom argument of the report), no shared key
    promotion = xcom(run, "register_model")
    assert promotion["promoted"] is True and promotion["model_package_arn"] and "beats" in promotion["reason"]
    assert all(xcom(run, task, key="promotion") is None for task in ("promotion_gate", "register_model"))
    packages = sagemaker.list_model_packages(ModelPackageGroupName="aerial-dino-vit")[
        "ModelPackageSummaryList"
    ]
    assert [p["ModelPackageArn"] for p in packages] == [promotion["model_package_arn"]]
    # require_approval off (an automated run): nobody approved, the registry asks a person
    assert packages[0]["ModelApprovalStatus"] == promotion["ModelApprovalStatus"] == "PendingManualApproval"

    report_uri = xcom(run, "publish_report", key="report_uri")
    bucket, key = report_uri.removeprefix("s3://").split("/", 1)
    report = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "**PROMOTED**" in report and "Estimated cost" in report and "loss_curve.png" in report
    figures = s3.list_objects_v2(Bucket=bucket, Prefix=key.rsplit("/", 1)[0] + "/figures/")["Contents"]
    assert {Path(o["Key"]).name for o in figures} == {
        "loss_curve.png",
        "per_class_ap.png",
        "instance_metrics.png",
    }
    # the sandbox published the pretraining job's CPU / memory as SageMaker does (no GPU here: none of those)
    host = f"{pretrained['TrainingJobName']}/algo-1"
    listed = boto3.client("cloudwatch").list_metrics(
        Namespace="/aws/sagemaker/TrainingJobs", Dimensions=[{"Name": "Host", "Value": host}]
    )["Metrics"]
    assert {m["MetricName"] for m in listed} == {"CPUUtilization", "MemoryUtilization"}
    assert "No data for GPUUtilization, GPUMemoryUtilization" in report


def test_not_promoted_is_a_successful_run_with_a_clear_outcome(demo, airflow_db, capfd):
    settings, conf = demo
    run = run_dag({**conf, "promotion_margin": 1.0, "epochs": 1})
    task_log = capfd.readouterr().out
    assert run.state == "success", task_log[-3000:]
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["register_model"] == "skipped" and states["not_promoted"] == "success"
    assert states["stop_jobs_left_running"] == "success" and "stopped jobs left running: none" in task_log
    assert "NOT PROMOTED: new mAP" in task_log

    promotion = xcom(run, "not_promoted")
    assert promotion["promoted"] is False and "does not beat" in promotion["reason"]
    groups = boto3.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert groups == []
    report_uri = xcom(run, "publish_report", key="report_uri")
    bucket, key = report_uri.removeprefix("s3://").split("/", 1)
    assert "**NOT PROMOTED**" in boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()


@pytest.mark.faults  # 5 min: with the longer suite (make faults); CI approves one on the stack (tests/ui)
@pytest.mark.timeout(1500)  # a whole aerial run (5 min here, 15 on 2 loaded cores)
def test_a_rejected_promotion_registers_nothing_and_the_run_says_who(demo, airflow_db, capfd):
    """require_approval on, the metric gate passed: a person's Reject skips register_model; the report, the
    run summary and the Asset event say "not promoted: rejected by alice"; the run ends green."""
    settings, conf = demo
    with a_person_answering("aerial_pretraining", "approve_promotion", "Reject", "alice"):
        run = run_dag({**conf, "promotion_margin": -1.0, "epochs": 1, "require_approval": True})
    task_log = capfd.readouterr().out
    assert run.state == "success", task_log[-3000:]
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["approve_promotion"] == "success" and states["register_model"] == "skipped"
    assert states["not_promoted"] == "skipped" and states["publish_report"] == "success"
    assert boto3.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    summary = xcom(run, "publish_report", key="run_summary")
    assert "not promoted: rejected by alice" in summary["attention"]
    bucket, key = summary["report_uri"].removeprefix("s3://").split("/", 1)
    report = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "**NOT PROMOTED**: rejected by alice" in report


def test_bad_input_fails_before_any_job_starts(demo, airflow_db, capfd):
    settings, conf = demo
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=settings.data_bucket, Key="aerial_pretraining/bigearthnet-s2/val.csv")
    # the job code of this release was never deployed (`make deploy` not run)
    s3.delete_object(
        Bucket=settings.artifacts_bucket,
        Key=f"job-code/{settings.image_tag}/aerial_pretraining/manifest.json",
    )
    nope = f"s3://{settings.artifacts_bucket}/aerial_pretraining/nope/dino.pth"  # a prefix its role may read
    run = run_dag(
        {
            **conf,
            "baseline_checkpoint_uri": nope,
            "use_spot_instances": True,
            "spot_max_wait_hours": 1,
            "max_runtime_hours": 2,
        }
    )
    task_log = "".join(capfd.readouterr())
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["validate_inputs"] == "failed" and states["prepare_dataset"] != "success"
    assert f"missing s3://{settings.data_bucket}/aerial_pretraining/bigearthnet-s2/val.csv" in task_log
    assert f"baseline checkpoint {nope} does not exist" in task_log
    assert "spot_max_wait_hours (1) must be >= max_runtime_hours (2)" in task_log
    assert (
        f"s3://{settings.artifacts_bucket}/job-code/{settings.image_tag}/aerial_pretraining/manifest.json "
        "does not exist"
        in task_log
        and "run `make deploy`" in task_log
    )
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.list_processing_jobs()["ProcessingJobSummaries"] == []
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_a_missing_band_fails_the_prepare_job_once_naming_its_s3_uri(demo, airflow_db, capfd):
    """13.3 / 13.9: the prepare job's input error is final — one processing job, no Airflow retry (the task
    keeps its retries), no GPU job — and the message names the band's S3 URI, not the container path."""
    settings, conf = demo
    s3 = boto3.client("s3")
    prefix = "aerial_pretraining/bigearthnet-s2/"
    listed = s3.get_object(Bucket=settings.data_bucket, Key=prefix + "test.csv")["Body"].read().decode()
    name = listed.split()[0]
    band = f"{prefix}{name}/{name}_B03.tif"
    s3.delete_object(Bucket=settings.data_bucket, Key=band)
    dag = load_dag(DAG_FILE)
    for task in dag.tasks:
        task.retries = 0 if task.task_id != "prepare_dataset" else 2
    run = dag.test(run_conf=conf)
    task_log = "".join(capfd.readouterr())
    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert run.state == "failed", states  # a failed job task never ends green
    assert states["prepare_dataset"] == ("failed", 1), states
    assert states["stop_jobs_left_running"][0] == "success"
    assert f"missing band file s3://{settings.data_bucket}/{band}" in task_log
    jobs = boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["ProcessingJobStatus"] == "Failed"
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
