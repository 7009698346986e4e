"""orchard's async-invocation, labeling-job and autoscaling pieces, against the sandbox where they call AWS."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
from airflow.exceptions import TaskDeferred
from orchard.hooks.async_inference import SageMakerAsyncInferenceHook
from orchard.hooks.autoscaling import EndpointAutoScalingHook
from orchard.hooks.labeling_job import task_lambda_arns
from orchard.operators.async_inference import SageMakerAsyncInvokeOperator
from orchard.operators.labeling_job import SageMakerLabelingJobOperator

from local_aws.demo_data import auto_labeling as demo
from tests.local_aws.test_async_endpoints_and_labeling import BUCKET, deploy


def test_ground_truth_lambda_arns_per_region_and_mode():
    assert task_lambda_arns("verify", "us-east-1") == {
        "pre": "arn:aws:lambda:us-east-1:432418664414:function:PRE-VerificationBoundingBox",
        "consolidation": "arn:aws:lambda:us-east-1:432418664414:function:ACS-VerificationBoundingBox",
    }
    assert (
        task_lambda_arns("adjust", "eu-west-1")["pre"]
        == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-AdjustmentBoundingBox"
    )
    with pytest.raises(ValueError, match="stop_at_manifest"):
        task_lambda_arns("verify", "eu-west-3")
    with pytest.raises(ValueError, match="verify, adjust"):
        task_lambda_arns("draw", "us-east-1")


def labeling_operator(**overrides):
    arguments = dict(
        task_id="label",
        job_name="job",
        manifest_uri="s3://b/m",
        output_uri="s3://b/o/",
        label_categories_uri="s3://b/c.json",
        ui_template_uri="s3://b/t.liquid",
        workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t",
        role_arn="arn:aws:iam::123456789012:role/r",
        label_attribute="verified",
        region_name="us-east-1",
    )
    return SageMakerLabelingJobOperator(**{**arguments, **overrides})


def test_labeling_tasks_may_wait_up_to_30_days_and_no_longer():
    request = labeling_operator(task_availability_s=30 * 24 * 3600, mode="adjust").request()
    task = request["HumanTaskConfig"]
    assert task["TaskAvailabilityLifetimeInSeconds"] == 2592000
    assert task["PreHumanTaskLambdaArn"].endswith("PRE-AdjustmentBoundingBox")
    assert task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        "ACS-AdjustmentBoundingBox"
    )
    with pytest.raises(ValueError, match="30 days"):
        labeling_operator(task_availability_s=31 * 24 * 3600).request()


def test_the_labeling_wait_is_sized_from_the_task_availability(aws):
    operator = labeling_operator(task_availability_s=20 * 24 * 3600, waiter_delay=60)
    operator.hook.conn.create_labeling_job = lambda **kwargs: None
    operator._existing_status = lambda: None
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert deferred.value.trigger.attempts * 60 >= 20 * 24 * 3600
    assert deferred.value.timeout.total_seconds() > 20 * 24 * 3600


@pytest.fixture
def endpoint(aws):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    assert deploy(boto3.client("sagemaker"))[-1] == "InService"
    return "detector"


def shard_with_frames(count: int) -> dict:
    s3 = boto3.client("s3")
    keys = demo.upload_frames(s3, BUCKET, "frames/", count)
    s3.put_object(Bucket=BUCKET, Key="frames/broken.png", Body=b"nope")
    frames = [f"s3://{BUCKET}/{key}" for key in [*keys, "frames/broken.png"]]
    s3.put_object(Bucket=BUCKET, Key="shards/0.json", Body=json.dumps(frames))
    return {
        "index": 0,
        "frames_uri": f"s3://{BUCKET}/shards/0.json",
        "record_uri": f"s3://{BUCKET}/shards/0.record.json",
    }


def run_trigger(trigger):
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first_event())


def test_a_shard_is_invoked_awaited_and_a_retry_invokes_only_what_failed(endpoint, monkeypatch):
    invoked: list[str] = []
    original = SageMakerAsyncInferenceHook.invoke_async

    def counting(self, endpoint_name, input_location, content_type, client=None):
        invoked.append(input_location.rsplit("/", 1)[-1])
        return original(self, endpoint_name, input_location, content_type, client)

    monkeypatch.setattr(SageMakerAsyncInferenceHook, "invoke_async", counting)
    shard = shard_with_frames(5)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke",
        endpoint_name=endpoint,
        shard=shard,
        max_concurrency=3,
        waiter_delay=1,
        max_wait_s=60,
    )

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert len(invoked) == 6
    event = run_trigger(deferred.value.trigger)
    assert event["status"] == "success"
    summary = operator.execute_complete({}, event)

    assert summary == {"shard": 0, "answered": 5, "failed": 1, "record_uri": shard["record_uri"]}
    record = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read()
    )
    [failed] = [r for r in record["results"] if r["status"] == "failed"]
    assert failed["input"].endswith("broken.png") and "not a decodable image" in failed["reason"]
    assert len({i["inference_id"] for i in record["invocations"]}) == 6

    invoked.clear()
    with pytest.raises(TaskDeferred):  # a retry of the same task
        operator.execute({})
    assert invoked == ["broken.png"]  # answered frames are not invoked again


def test_a_shard_the_endpoint_refuses_entirely_fails_with_the_reason(endpoint):
    shard = shard_with_frames(1)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name="no-such-endpoint", shard=shard, waiter_delay=1
    )
    with pytest.raises(RuntimeError, match="refused every invocation.*not found"):
        operator.execute({})


def test_autoscaling_follows_the_backlog_and_is_removed(aws):
    hook = EndpointAutoScalingHook(aws_conn_id="aws_default", region_name="us-east-1")
    created = hook.scale_with_backlog("detector", "AllTraffic", max_instances=3)

    scaling = boto3.client("application-autoscaling")
    [target] = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    policies = {
        p["PolicyType"]: p
        for p in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    }
    tracking = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert (
        tracking["TargetValue"] == 5.0 and tracking["ScaleInCooldown"] == tracking["ScaleOutCooldown"] == 300
    )
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    [alarm] = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity" and alarm["AlarmActions"] == [
        created["step_policy"]
    ]

    hook.remove_scaling("detector", "AllTraffic")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert boto3.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    hook.remove_scaling("detector", "AllTraffic")  # a retried teardown finds nothing left, and succeeds


# ------------------------------------------------------------------------------ input validation

PARAMS = {
    "frames_prefix": f"s3://{BUCKET}/frames/",
    "model_id": "m",
    "model_data_uri": f"s3://{BUCKET}/model.tar.gz",
    "image_uri": "",
    "existing_endpoint_name": "",
    "instance_type": "ml.m5.xlarge",
    "max_instances": 2,
    "max_concurrent_invocations_per_instance": 4,
    "frames_per_shard": 2,
    "max_frames": 5,
    "score_threshold": 0.5,
    "label_categories": ["pedestrian"],
    "labeling_mode": "verify",
    "stop_at_manifest": False,
}
RUN_ID = "manual__2026-11-21T10:00:00+00:00"


@pytest.fixture
def data(aws):
    s3 = boto3.client("s3")
    for bucket in (BUCKET, "orchard-artifacts"):
        s3.create_bucket(Bucket=bucket)
    for index in range(7):
        s3.put_object(Bucket=BUCKET, Key=f"frames/{index}.png", Body=b"png")
    s3.put_object(Bucket=BUCKET, Key="frames/notes.txt", Body=b"not a frame")
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=b"tar")
    return s3


def test_a_plan_caps_the_frames_and_splits_them_into_shards(data):
    from orchard.auto_labeling.steps import plan_run

    plan = plan_run(PARAMS, "auto_labeling", RUN_ID)

    assert plan["owned"] and plan["frames"] == 5 and len(plan["shards"]) == 3
    assert plan["endpoint_name"].startswith("auto-labeling-manual-20261121t100000")
    first = json.loads(
        data.get_object(Bucket="orchard-artifacts", Key=plan["shards"][0]["frames_uri"].split("/", 3)[3])[
            "Body"
        ].read()
    )
    assert first == [f"s3://{BUCKET}/frames/0.png", f"s3://{BUCKET}/frames/1.png"]
    assert "pytorch-inference" in plan["image_uri"] and plan["output_path"] != plan["failure_path"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frames_prefix": f"s3://{BUCKET}/nothing/"}, "no frames"),
        ({"frames_prefix": "s3://no-such-bucket/frames/"}, "does not exist"),
        ({"model_data_uri": f"s3://{BUCKET}/missing.tar.gz"}, "does not exist: upload"),
        ({"model_data_uri": ""}, "existing_endpoint_name"),
        ({"label_categories": ["car", "car"]}, "duplicates"),
        ({"existing_endpoint_name": "nobody"}, "existing_endpoint_name nobody"),
    ],
)
def test_bad_input_is_refused_before_anything_billable(data, change, message):
    from orchard.auto_labeling.steps import InputError, plan_run

    with pytest.raises(InputError, match=message):
        plan_run({**PARAMS, **change}, "auto_labeling", RUN_ID)
    assert boto3.client("sagemaker").list_models()["Models"] == []


def test_an_existing_endpoint_must_be_asynchronous(data):
    from orchard.auto_labeling.steps import InputError, plan_run

    assert deploy(boto3.client("sagemaker"), "realtime", async_config=False)[-1] == "InService"
    with pytest.raises(InputError, match="not asynchronous"):
        plan_run(
            {**PARAMS, "existing_endpoint_name": "realtime", "model_data_uri": ""}, "auto_labeling", RUN_ID
        )


# ------------------------------------------------------------------------------------- deploy


def deploy_operator(**kwargs):
    from orchard.operators.async_endpoint import SageMakerAsyncEndpointOperator

    return SageMakerAsyncEndpointOperator(
        task_id="deploy_endpoint",
        config={"EndpointName": "detector", "EndpointConfigName": "detector"},
        deferrable=True,
        check_interval=1,
        **kwargs,
    )


def test_a_retried_deploy_finds_its_endpoint_instead_of_creating_or_updating_it(endpoint):
    result = deploy_operator().execute({})
    assert result["Endpoint"]["EndpointStatus"] == "InService"
    assert [e["EndpointName"] for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]] == [
        "detector"
    ]


def test_a_retried_deploy_of_a_failed_endpoint_fails_with_the_reason(aws):
    from local_aws.s3io import tar_gz

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    code = b"def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n"
    assert deploy(boto3.client("sagemaker"), model_data=tar_gz({"code/inference.py": code}))[-1] == "Failed"
    with pytest.raises(RuntimeError, match="weights are corrupt"):
        deploy_operator().execute({})


def test_an_existing_endpoint_is_described_not_created(endpoint):
    result = deploy_operator(existing_endpoint_name=endpoint).execute({})
    assert result["Endpoint"]["EndpointName"] == endpoint
