"""auto_labeling end to end on the sandbox: a real async endpoint pre-labels generated frames, Ground Truth's
sandbox stand-in auto-accepts them, and every billable resource is gone at the end — even when invoke fails.

The main run uses the DAG's own param defaults (issue 13.1): the data is where the defaults point
(`s3://<ORCHARD_DATA_BUCKET>/auto_labeling/frames/`, `.../model/model.tar.gz`, the `orchard-labelers`
workteam); no conf."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from local_aws.demo_data import auto_labeling as demo
from tests.dag_files import load_dag

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "auto_labeling.py"
DATA, ARTIFACTS = "orchard-data", "orchard-artifacts"
FRAMES = 20
FRAMES_PREFIX = "auto_labeling/frames/"  # the param defaults' places (dags/auto_labeling.py)
MODEL_KEY = "auto_labeling/model/model.tar.gz"


@pytest.fixture
def dag(aws, airflow_db, monkeypatch):
    s3 = boto3.client("s3")
    for bucket in (DATA, ARTIFACTS):
        s3.create_bucket(Bucket=bucket)
    demo.upload_frames(s3, DATA, FRAMES_PREFIX, FRAMES)
    # One frame the model cannot decode: it passes validation (a PNG signature), the endpoint fails it.
    s3.put_object(Bucket=DATA, Key=f"{FRAMES_PREFIX}frame-broken.png", Body=b"\x89PNG\r\n\x1a\nnot an image")
    # A sibling folder the default prefix must not read (issue 13.7: a prefix is a folder).
    demo.upload_frames(s3, DATA, "auto_labeling/frames-old/", 2)
    s3.put_object(Bucket=DATA, Key=MODEL_KEY, Body=demo.model_tarball())
    demo.prepare_ground_truth(s3, boto3.client("sagemaker"), DATA)  # CORS rule + workteam
    return load_dag(DAG_FILE)


def conf(**overrides):
    """The param defaults plus `overrides`; the defaults already point at the test's data. The sandbox's
    endpoint and labeling job are ready in seconds: poll them every second, not AWS's 30 s."""
    return {"poll_seconds": 1, **overrides}


def read(uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(bucket: str, contains: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", []) if contains in o["Key"]]


def assert_no_billable_resources():
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    scaling = boto3.client("application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert boto3.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_frames_are_prelabeled_verified_and_every_resource_removed(dag, inline_triggers):
    run = dag.test(run_conf=conf())

    assert run.state == "success"
    triggers = [type(t).__name__ for t, _ in inline_triggers]
    assert triggers.count("AsyncInferenceOutputsTrigger") == 1  # 21 frames, 500 per shard (the default)
    assert {"SageMakerEndpointInServiceTrigger", "SageMakerLabelingJobTrigger"} <= set(triggers)
    # Failures are collected with the endpoint's reason, not lost.
    [failure] = json.loads(read(f"s3://{ARTIFACTS}/{keys(ARTIFACTS, 'invocations/failures.json')[0]}"))
    assert failure["input"].endswith("frame-broken.png") and "not a decodable image" in failure["reason"]
    # The manifest: one Ground Truth bounding-box line per answered frame, boxes found by the detector.
    [manifest_key] = keys(ARTIFACTS, "manifest/prelabels.manifest")
    lines = [json.loads(line) for line in read(f"s3://{ARTIFACTS}/{manifest_key}").splitlines()]
    assert len(lines) == FRAMES
    boxes = [box for line in lines for box in line["prelabel"]["annotations"]]
    assert len(boxes) >= FRAMES  # the HOG detector finds most of the ~2 pedestrians per frame
    assert all(line["prelabel-metadata"]["type"] == "groundtruth/object-detection" for line in lines)
    assert all(o["confidence"] >= 0.5 for line in lines for o in line["prelabel-metadata"]["objects"])
    # The labeling job's auto-accepted output became the verified dataset.
    [verified_key] = keys(ARTIFACTS, "verified/verified.jsonl")
    verified = [json.loads(line) for line in read(f"s3://{ARTIFACTS}/{verified_key}").splitlines()]
    assert len(verified) == FRAMES and {v["status"] for v in verified} == {"verified"}
    job = boto3.client("sagemaker").list_labeling_jobs()["LabelingJobSummaryList"]
    assert [j["LabelingJobStatus"] for j in job] == ["Completed"]
    # The report names the model, states the auto-accept policy, and has its sample grid.
    report_uri = (
        run.get_task_instance("publish_report").xcom_pull(task_ids="publish_report", key="report_uri")
        if hasattr(run, "get_task_instance")
        else None
    )
    [report_key] = keys(ARTIFACTS, "report.md")
    report = read(f"s3://{ARTIFACTS}/{report_key}").decode()
    assert "opencv-hog-people-detector" in report and "auto-accept policy" in report
    # What is missing from the manifest is said, frame by frame (issue 13.5).
    assert "Missing from the manifest: 1 of 21 frames" in report
    assert f"s3://{DATA}/{FRAMES_PREFIX}frame-broken.png" in report
    assert keys(ARTIFACTS, "figures/samples.png")
    assert report_uri is None or report_uri.endswith(report_key)
    assert_no_billable_resources()


def test_ground_truth_prerequisites_fail_the_run_at_validation_before_any_endpoint(dag):
    """No CORS rule on the frames bucket: validate_inputs fails once (no retry), nothing billable starts."""
    boto3.client("s3").delete_bucket_cors(Bucket=DATA)

    run = dag.test(run_conf=conf())

    assert run.state == "failed"
    validate = run.get_task_instance("validate_inputs")
    assert validate.state == "failed" and validate.try_number == 1
    assert run.get_task_instance("deploy_endpoint").state != "success"
    assert_no_billable_resources()
    assert boto3.client("sagemaker").list_labeling_jobs()["LabelingJobSummaryList"] == []


def test_teardown_removes_the_endpoint_when_invoke_fails(dag, monkeypatch):
    from orchard.operators.async_inference import SageMakerAsyncInvokeOperator

    endpoints_during_invoke = []

    def broken_invoke(self, context):
        endpoints_during_invoke.extend(
            e["EndpointStatus"] for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]
        )
        raise RuntimeError("injected invoke failure")

    monkeypatch.setattr(SageMakerAsyncInvokeOperator, "execute", broken_invoke)
    dag.get_task("invoke").partial_kwargs["retries"] = 0  # fail now, not after the retries' backoff
    run = dag.test(run_conf=conf())

    assert run.state == "failed"
    assert endpoints_during_invoke == ["InService"]  # the shard saw it; the cleanup removed it
    assert_no_billable_resources()
    assert keys(ARTIFACTS, "manifest/") == []


def test_an_existing_endpoint_is_used_as_is_and_kept_and_the_run_can_stop_at_the_manifest(dag):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="team-detector",
        # the model runs as its role: one that exists and trusts SageMaker (tests/e2e/conftest.py creates it)
        ExecutionRoleArn="arn:aws:iam::123456789012:role/orchard-sagemaker-execution",
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
            "ModelDataUrl": f"s3://{DATA}/{MODEL_KEY}",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="team-detector",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "team-detector",
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
        AsyncInferenceConfig={
            "OutputConfig": {
                "S3OutputPath": f"s3://{DATA}/team/out/",
                "S3FailurePath": f"s3://{DATA}/team/fail/",
            }
        },
    )
    sagemaker.create_endpoint(EndpointName="team-detector", EndpointConfigName="team-detector")
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="team-detector", WaiterConfig={"Delay": 1})

    run = dag.test(
        run_conf=conf(existing_endpoint_name="team-detector", model_data_uri=None, stop_at_manifest=True)
    )

    assert run.state == "success"
    assert sagemaker.describe_endpoint(EndpointName="team-detector")["EndpointStatus"] == "InService"
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["team-detector"]
    assert sagemaker.list_labeling_jobs()["LabelingJobSummaryList"] == []
    assert len(keys(DATA, "team/out/")) == FRAMES
    [manifest_key] = keys(ARTIFACTS, "manifest/prelabels.manifest")
    assert len(read(f"s3://{ARTIFACTS}/{manifest_key}").splitlines()) == FRAMES
    assert "stop_at_manifest" in read(f"s3://{ARTIFACTS}/{keys(ARTIFACTS, 'report.md')[0]}").decode()


def test_a_setup_failing_after_its_create_call_is_cleaned_and_the_run_fails(dag, monkeypatch):
    """Issue 14.1, one cell of the fault matrix: create_endpoint_config fails right after
    CreateEndpointConfig (every later setup is upstream_failed). The cleanup still runs, finds the model
    and the config by their names, removes them, and the run is failed."""
    from orchard.auto_labeling import endpoint

    created = endpoint.create_endpoint_config

    def fails_after_creating(plan):
        created(plan)
        raise RuntimeError("injected failure after CreateEndpointConfig")

    monkeypatch.setattr(endpoint, "create_endpoint_config", fails_after_creating)
    dag.get_task("create_endpoint_config").retries = 0

    run = dag.test(run_conf=conf())

    assert run.state == "failed"
    assert run.get_task_instance("create_endpoint_config").state == "failed"
    assert run.get_task_instance("delete_endpoint").state == "success"
    assert_no_billable_resources()
