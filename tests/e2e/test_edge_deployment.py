"""edge_deployment end to end in the sandbox: TVM compile, signed package, fleet of two simulated devices
running the real agent, IoT job, captured data, drift report, cleanup — and no private key anywhere.

The main run uses the DAG's own param defaults (issue 13.1): its model and calibration frames are uploaded
where the defaults point; the conf only says where the devices are — the sandbox's simulated cameras
(`simulated_devices`) and the frames they see (`camera_images_uri`). The demo's int8 / delete_fleet run is a
`faults`-marked variant (`make faults`, not CI)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from local_aws.demo_data import edge_deployment as demo
from orchard.settings import load_settings
from tests.dag_files import load_dag
from tests.e2e.approvals import a_person_answering

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "edge_deployment.py"
PRIVATE_KEY_MARKERS = ("PRIVATE KEY",)  # matches BEGIN RSA PRIVATE KEY and BEGIN PRIVATE KEY


@pytest.fixture
def buckets(aws):
    settings = load_settings(variables=False)
    s3 = boto3.client("s3")
    for bucket in {settings.data_bucket, settings.artifacts_bucket, settings.reports_bucket}:
        s3.create_bucket(Bucket=bucket)
    return s3, settings


def all_objects(s3) -> dict[str, bytes]:
    found = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[f"s3://{bucket}/{item['Key']}"] = s3.get_object(Bucket=bucket, Key=item["Key"])[
                    "Body"
                ].read()
    return found


def test_edge_deployment_on_its_defaults(buckets, airflow_db, inline_triggers, capfd):
    s3, settings = buckets
    uploaded = demo.upload(s3, settings, per_device=12, calibration=24)
    dag = load_dag(DAG_FILE)
    defaults = {name: param.value for name, param in dag.params.items()}
    # the demo data sits where the defaults look
    for where in ("model_uri", "calibration_uri"):
        assert defaults[where] == uploaded[where]
    # where the devices are: the sandbox's simulated cameras and the frames they see
    conf = {"simulated_devices": True, "camera_images_uri": uploaded["camera_images_uri"]}

    run = dag.test(run_conf=conf)
    task_log = "".join(capfd.readouterr())
    check_run(run, s3, settings, inline_triggers, task_log, int8=False, fleet_deleted=False)


@pytest.mark.faults
def test_edge_deployment_int8_deleting_its_fleet(buckets, airflow_db, inline_triggers, capfd):
    """The demo's conf: int8 quantization, fast polls and captures, and delete_fleet at the end."""
    s3, settings = buckets
    conf = demo.upload(s3, settings, per_device=12, calibration=24)
    conf.update(poll_seconds=1, capture_batch_size=5, capture_push_period_seconds=1)

    run = load_dag(DAG_FILE).test(run_conf=conf)
    task_log = "".join(capfd.readouterr())
    check_run(run, s3, settings, inline_triggers, task_log, int8=True, fleet_deleted=True)


def check_run(run, s3, settings, inline_triggers, task_log: str, *, int8: bool, fleet_deleted: bool) -> None:

    assert run.state == "success", task_log[-4000:]
    # The compile and deploy waits went through their triggers.
    assert {type(t).__name__ for t, _ in inline_triggers} >= {
        "NeoCompilationTrigger",
        "IotJobCompletedTrigger",
    }

    objects = all_objects(s3)
    package_key = (
        f"s3://{settings.artifacts_bucket}/edge_deployment/packages/fruit-colour/1.0.0/package.tar.gz"
    )
    assert package_key in objects
    manifest = json.loads(objects[package_key.replace("package.tar.gz", "manifest.json")])
    assert manifest["variant"] == ("int8" if int8 else "float32")
    assert manifest["artifacts"]["quantized"] is int8
    artifacts = manifest["artifacts"]
    assert artifacts["layout"] == "neo-sandbox" and artifacts["runtime"] == "tvm-relax-vm"
    assert set(manifest["files"]) == {"compiled.so", "compiled.meta", "reference.json"}
    assert (manifest["prepared"].get("int8_top1_agreement", -1) >= 0) is int8

    # Both simulated devices captured every frame they classified, in batches.
    captures = [k for k in objects if "/edge_deployment/captures/edge-demo-fleet/" in k]
    for device in demo.DEVICES:
        records = [
            json.loads(line) for k in captures if f"/{device}/" in k for line in objects[k].splitlines()
        ]
        assert len(records) == 12 and {r["model"] for r in records} == {"fruit-colour"}
    assert len(captures) >= 2 * (12 // 5)

    # The drift report flags the brighter camera and not the other one.
    [drift_key] = [k for k in objects if k.endswith("/monitor/drift.json")]
    devices = json.loads(objects[drift_key])["summary"]["devices"]
    assert devices["edge-demo-camera-2"]["input_psi"] > devices["edge-demo-camera-1"]["input_psi"]
    assert devices["edge-demo-camera-2"]["input_drift"] == "drift"
    [report_json] = [k for k in objects if k.endswith("/report.json") and "/edge_deployment/" in k]
    report = json.loads(objects[report_json])
    assert any(f.endswith("input_drift.png") for f in report["figures"])
    assert ("int8 top-1 agreement with float32" in report["metrics"]) is int8
    # The prepare step ran as a SageMaker processing job; Neo compiled the int8 model it wrote.
    assert (
        boto3.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"][0]["ProcessingJobStatus"]
        == "Completed"
    )

    # The cleanup removed the fleet when asked; by default the fleet stays (devices keep their identity),
    # and the run's IoT job ended with every device SUCCEEDED.
    iot = boto3.client("iot")
    things = [t["thingName"] for t in iot.list_things()["things"]]
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]
    if fleet_deleted:
        assert things == [] and secrets == []
    else:
        assert sorted(things) == sorted(demo.DEVICES) and len(secrets) == len(demo.DEVICES)
    [job] = iot.list_jobs()["jobs"]
    assert job["status"] == "COMPLETED"

    # No private key in any S3 object, any XCom value or the task log.
    assert not [k for k, body in objects.items() if any(m.encode() in body for m in PRIVATE_KEY_MARKERS)]
    assert not any(m in task_log for m in PRIVATE_KEY_MARKERS)
    device_and_job_logs = all_log_messages()
    assert any(
        "verified (sha256, KMS signature" in line for line in device_and_job_logs
    )  # the agents' own lines
    assert not any(m in line for line in device_and_job_logs for m in PRIVATE_KEY_MARKERS)
    xcoms = run_xcoms(run.run_id)
    assert len(xcoms) >= 8 and any("certificate_arn" in value for value in xcoms)
    assert not any(m in value for value in xcoms for m in PRIVATE_KEY_MARKERS)


def all_log_messages() -> list[str]:
    """Every CloudWatch Logs line of the run: compilation job, simulated devices' agents."""
    logs = boto3.client("logs")
    lines = []
    for group in logs.describe_log_groups()["logGroups"]:
        for stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]:
            events = logs.get_log_events(
                logGroupName=group["logGroupName"], logStreamName=stream["logStreamName"]
            )
            lines += [e["message"] for e in events["events"]]
    return lines


def run_xcoms(run_id: str) -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="edge_deployment", run_id=run_id).all()
        return [json.dumps(row.value, default=str) for row in rows]


def test_a_model_of_the_wrong_shape_fails_the_run_before_anything_is_compiled_or_provisioned(
    buckets, airflow_db, capfd
):
    s3, settings = buckets
    conf = demo.upload(s3, settings, per_device=1, calibration=4)
    conf.update(poll_seconds=1, input_shape='{"data": [1, 3, 224, 224]}')

    run = load_dag(DAG_FILE).test(run_conf=conf)

    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["validate_model"] == "failed" and states["compile"] == "upstream_failed"
    assert boto3.client("sagemaker").list_compilation_jobs()["CompilationJobSummaries"] == []
    assert boto3.client("iot").list_things()["things"] == []
    # The report still tells what happened, root cause first: validate_model failed; the tasks after it did
    # not run (upstream failed) and are not named as causes.
    reports = s3.list_objects_v2(Bucket=settings.reports_bucket, Prefix="reports/edge_deployment/").get(
        "Contents", []
    )
    [report_md] = [o["Key"] for o in reports if o["Key"].endswith("report.md")]
    report = s3.get_object(Bucket=settings.reports_bucket, Key=report_md)["Body"].read().decode()
    assert "**FAILED** at validate_model (not run, upstream failed: prepare, compile, package" in report
    [summary] = [json.loads(v) for v in run_xcoms(run.run_id) if '"attention"' in v]
    assert summary["attention"] == ["failed at validate_model"]
    task_log = "".join(capfd.readouterr())
    assert "the run failed at validate_model (not run, upstream failed: prepare, compile" in task_log
    assert "the run failed at validate_model, " not in task_log  # the old message: every task without an XCom


@pytest.mark.faults
def test_deploy_failing_after_its_aws_call_leaves_no_job_and_no_fleet(buckets, airflow_db, monkeypatch):
    """14.1, one cell of the faults matrix: `deploy` fails right after CreateJob (real, offline devices: the
    job stays IN_PROGRESS). The cleanup cancels the run's IoT job and removes the fleet this run created;
    the run fails; nothing of the run is left running."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    from orchard.operators.iot import IotDeployOperator

    s3, settings = buckets
    demo.upload(s3, settings, per_device=1, calibration=8)
    original = IotDeployOperator.execute

    def fail_after_create_job(self, context):
        try:
            original(self, context)
        except TaskDeferred:
            raise RuntimeError("injected fault: deploy fails after CreateJob") from None

    monkeypatch.setattr(IotDeployOperator, "execute", fail_after_create_job)
    dag = load_dag(DAG_FILE)
    for task in dag.tasks:
        task.retries = 0
    # the defaults: real (here absent) devices; unattended (nobody answers the rollout approval here)
    run = dag.test(run_conf={"require_approval": False})

    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["deploy"] == "failed" and states["cleanup"] == "success"
    iot, sagemaker = boto3.client("iot"), boto3.client("sagemaker")
    [job] = iot.list_jobs()["jobs"]
    assert job["status"] in ("CANCELED", "CANCELLATION_IN_PROGRESS")
    assert iot.list_things()["things"] == [] and iot.list_thing_groups()["thingGroups"] == []
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []
    assert [
        j
        for j in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
        if j["ProcessingJobStatus"] == "InProgress"
    ] == []
    assert [
        j
        for j in sagemaker.list_compilation_jobs()["CompilationJobSummaries"]
        if j["CompilationJobStatus"] in ("INPROGRESS", "STARTING")
    ] == []


@pytest.mark.faults  # 2.5 min: with the longer suite (make faults); CI covers the approval on the stack (tests/ui)
def test_a_rejected_rollout_deploys_nothing_removes_its_fleet_and_ends_green(
    buckets, airflow_db, inline_triggers, capfd
):
    """The defaults (a real fleet, require_approval on): the run waits at approve_rollout; a person's Reject
    skips deploy and monitor, the cleanup removes the fleet this run created, the report says why."""
    s3, settings = buckets
    demo.upload(s3, settings, per_device=1, calibration=4)
    dag = load_dag(DAG_FILE)
    for task in dag.tasks:
        task.retries = 0
    with a_person_answering("edge_deployment", "approve_rollout", "Reject", "alice"):
        run = dag.test(run_conf={"poll_seconds": 1})
    task_log = "".join(capfd.readouterr())

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", (states, task_log[-3000:])
    assert states["approve_rollout"] == "success" and states["deploy"] == "skipped"
    assert states["monitor"] == "skipped" and states["cleanup"] == "success" and states["report"] == "success"
    assert "waiting up to 24 h for a person's answer" in task_log and "rejected by alice" in task_log
    iot = boto3.client("iot")
    assert iot.list_jobs()["jobs"] == []  # nothing deployed
    assert (
        iot.list_things()["things"] == [] and iot.list_thing_groups()["thingGroups"] == []
    )  # the fleet: gone
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []
    [report_key] = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=settings.reports_bucket)["Contents"]
        if o["Key"].endswith("report.md")
    ]
    report = s3.get_object(Bucket=settings.reports_bucket, Key=report_key)["Body"].read().decode()
    assert "## Rollout approval" in report and "**Not deployed**: rejected by alice" in report
