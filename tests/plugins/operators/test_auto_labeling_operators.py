"""orchard's async-invocation, labeling-job and autoscaling pieces, against the sandbox where they call AWS."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import boto3
import pytest
from airflow.exceptions import TaskDeferred

from local_aws.demo_data import auto_labeling as demo
from orchard.hooks.async_inference import SageMakerAsyncInferenceHook
from orchard.hooks.autoscaling import EndpointAutoScalingHook
from orchard.hooks.labeling_job import task_lambda_arns
from orchard.operators.async_inference import SageMakerAsyncInvokeOperator
from orchard.operators.labeling_job import SageMakerLabelingJobOperator
from tests.local_aws.test_async_endpoints_and_labeling import (  # noqa: F401 (fixtures)
    BUCKET,
    deploy,
    labeling_request,
    manifest_in_s3,
    sagemaker,
)
from tests.plugins.auto_labeling.inputs import PARAMS, RUN_ID, data  # noqa: F401 (fixture)

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "auto_labeling.py"


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


def test_the_labeling_wait_fails_fast_naming_a_job_that_no_longer_exists(aws):
    """Issue 14.3: DescribeLabelingJob answering ResourceNotFound (a job deleted with its account's data, or
    a sandbox restarted) ends the wait on the first poll naming the job; it used to poll for 30 days."""
    from orchard.triggers.labeling_job import SageMakerLabelingJobTrigger

    trigger = SageMakerLabelingJobTrigger(
        job_name="auto-labeling-gone", waiter_delay=3, waiter_max_attempts=30, region_name="us-east-1"
    )
    started = time.monotonic()
    try:
        event = run_trigger(trigger)
    except Exception as error:  # providers that raise from the trigger instead of yielding a failure
        event = {"status": "error", "message": str(error)}
    assert time.monotonic() - started < 20, "the wait polled on after AWS said the job does not exist"
    assert event["status"] != "success" and "auto-labeling-gone" in event["message"], event
    assert "ResourceNotFound" in event["message"] or "Could not find" in event["message"]
    with pytest.raises(RuntimeError, match="labeling job auto-labeling-gone did not complete"):
        labeling_operator(job_name="auto-labeling-gone").execute_complete({}, event)


def test_every_cleanup_runs_whatever_failed_and_fails_the_run_when_it_fails():
    """Issue 14.1: one billable resource per creating task; the cleanups are teardowns that fail the run
    when they fail, and have reserve_names (which creates nothing) among their setups, so they run even
    when every creating setup failed (Airflow skips a teardown none of whose setups succeeded)."""
    from airflow.task.trigger_rule import TriggerRule

    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    dag.validate()  # Airflow's own setup / teardown rules (dag.test and the scheduler apply them)
    creating = ["create_model", "create_endpoint_config", "deploy_endpoint", "scale_endpoint"]
    for task_id, setups in (
        ("delete_endpoint", ["reserve_names", *creating]),
        ("stop_labeling_job", ["reserve_names"]),
    ):
        cleanup = dag.get_task(task_id)
        assert cleanup.is_teardown and cleanup.on_failure_fail_dagrun, task_id
        assert cleanup.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
        upstream_setups = {t for t in cleanup.upstream_task_ids if dag.get_task(t).is_setup}
        assert upstream_setups == set(setups), task_id
    assert "label" in dag.get_task("stop_labeling_job").upstream_task_ids
    assert dag.get_task("create_model").downstream_task_ids >= {"create_endpoint_config"}


def test_the_sweep_is_last_all_done_behind_the_cleanups_and_the_runs_only_leaf():
    """The second line of defence (orchard.sweep): after both cleanups and the report, whatever happened;
    the run's only leaf, so it carries the run's state (Airflow judges a run by its leaves)."""
    from airflow.task.trigger_rule import TriggerRule

    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    sweep = dag.get_task("sweep_leftovers")
    assert sweep.trigger_rule == TriggerRule.ALL_DONE and not sweep.is_teardown
    assert sweep.upstream_task_ids >= {"delete_endpoint", "stop_labeling_job", "publish_report"}
    assert [t.task_id for t in dag.leaves] == ["sweep_leftovers"]
    assert sweep.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"sweep_leftovers"}


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

    def counting(self, endpoint_name, input_location, content_type, client=None, accept=""):
        invoked.append(input_location.rsplit("/", 1)[-1])
        return original(self, endpoint_name, input_location, content_type, client, accept=accept)

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

    assert summary == {
        "shard": 0,
        "answered": 5,
        "failed": 1,
        "unanswered": 0,
        "record_uri": shard["record_uri"],
    }
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


def test_a_shard_is_invoked_on_one_aws_session(endpoint, monkeypatch):
    """invoke is on the critical path (issue 17.1): its S3 reads and writes and its InvokeEndpointAsync
    calls share ONE session (before: an S3Hook's client, the boto3 resource of its read_key and the
    runtime client, three sessions, each with the connection's AssumeRole and a user-agent stack walk)."""
    from tests.plugins.reads import count_reads

    shard = shard_with_frames(3)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=shard, waiter_delay=1, max_wait_s=60
    )
    reads = count_reads(monkeypatch)

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})

    assert reads.sessions == 1
    record = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read()
    )
    assert len(record["invocations"]) == 4  # the three frames and broken.png, each with its locations
    assert all(invocation["output"].startswith("s3://") for invocation in record["invocations"])
    event = run_trigger(deferred.value.trigger)  # the triggerer's sessions are not the task's
    reads.sessions = 0
    operator.execute_complete({}, event)  # a resumed task: one session too
    assert reads.sessions == 1


def never_answered(frame: str) -> dict[str, str]:
    """An invocation the endpoint accepted but never answers: its output and failure objects never appear."""
    name = frame.rsplit("/", 1)[-1]
    return {
        "input": frame,
        "inference_id": f"lost-{name}",
        "output": f"s3://{BUCKET}/out/lost-{name}.out",
        "failure": f"s3://{BUCKET}/fail/lost-{name}-error.out",
    }


def test_a_frame_never_answered_is_recorded_failed_the_shard_succeeds_and_a_retry_reinvokes_it(
    endpoint, monkeypatch
):
    """Issue 13.5: an async output that never arrives no longer fails the shard (it was a RuntimeError on
    the answered frames too); it is a failed frame with its reason, and clearing the task invokes only it
    (and the frame the model refused) again."""
    invoked: list[str] = []
    original = SageMakerAsyncInferenceHook.invoke_async
    lost = {"frame-00002.png"}

    def losing(self, endpoint_name, input_location, content_type, client=None, accept=""):
        name = input_location.rsplit("/", 1)[-1]
        invoked.append(name)
        if name in lost:
            return never_answered(input_location)
        return original(self, endpoint_name, input_location, content_type, client, accept=accept)

    monkeypatch.setattr(SageMakerAsyncInferenceHook, "invoke_async", losing)
    shard = shard_with_frames(4)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=shard, waiter_delay=1, max_wait_s=8
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert "frame-00002.png" in invoked, invoked
    event = run_trigger(deferred.value.trigger)
    assert event["status"] == "timeout"

    summary = operator.execute_complete({}, event)

    assert summary == {
        "shard": 0,
        "answered": 3,
        "failed": 2,
        "unanswered": 1,
        "record_uri": shard["record_uri"],
    }
    record = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read()
    )
    [missing] = [r for r in record["results"] if r.get("unanswered")]
    assert missing["input"].endswith("frame-00002.png") and missing["status"] == "failed"
    # the wait covers max_wait_s=8 with polls of 1 s, plus the poll that sees the end (orchard.waits)
    assert "no answer from endpoint detector within 9 s" in missing["reason"]

    invoked.clear()
    lost.clear()
    with pytest.raises(TaskDeferred) as deferred:  # the task cleared by a person: a new try
        operator.execute({})
    assert sorted(invoked) == ["broken.png", "frame-00002.png"]  # only what failed
    summary = operator.execute_complete({}, run_trigger(deferred.value.trigger))
    assert (summary["answered"], summary["failed"], summary["unanswered"]) == (4, 1, 0)


def test_a_retry_does_not_crash_on_failure_objects_of_other_shards(endpoint):
    """Issue 13.5: the shards share the endpoint's S3FailurePath; a retry of one shard listed that folder
    and looked every failure object up among its own invocations (KeyError on another shard's)."""
    s3 = boto3.client("s3")
    first = shard_with_frames(1)  # frame-0000.png and broken.png: one failure object
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=first, waiter_delay=1, max_wait_s=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    operator.execute_complete({}, run_trigger(deferred.value.trigger))
    s3.put_object(Bucket=BUCKET, Key="frames/broken-too.png", Body=b"also not an image")
    frames = [f"s3://{BUCKET}/frames/broken-too.png"]
    s3.put_object(Bucket=BUCKET, Key="shards/1.json", Body=json.dumps(frames))
    second = {"index": 1, "frames_uri": f"s3://{BUCKET}/shards/1.json", "record_uri": f"s3://{BUCKET}/1.rec"}
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=second, waiter_delay=1, max_wait_s=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert operator.execute_complete({}, run_trigger(deferred.value.trigger))["failed"] == 1

    with pytest.raises(TaskDeferred):  # the retry: no KeyError
        operator.execute({})


def test_the_wait_fails_fast_naming_an_endpoint_that_no_longer_exists(endpoint):
    """Issue 14.3: an endpoint deleted (or a sandbox restarted) while frames wait: the trigger ends on its
    first poll with an error naming the endpoint, not after max_wait_s; the shard task fails with it."""
    shard = shard_with_frames(1)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=shard, waiter_delay=1, max_wait_s=3600
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    record = {"endpoint": endpoint, "shard": 0, "invocations": [never_answered(f"s3://{BUCKET}/x.png")]}
    boto3.client("s3").put_object(Bucket=BUCKET, Key="shards/0.record.json", Body=json.dumps(record))
    boto3.client("sagemaker").delete_endpoint(EndpointName=endpoint)

    event = run_trigger(deferred.value.trigger)

    assert event["status"] == "error" and f"endpoint {endpoint} does not exist" in event["message"]
    with pytest.raises(RuntimeError, match=f"endpoint {endpoint} does not exist"):
        operator.execute_complete({}, event)


def test_each_frame_is_sent_with_its_own_type_and_the_models_accept(endpoint, monkeypatch):
    """A JPEG goes as image/jpeg, a PNG as image/png (no longer everything as image/png), with Accept."""
    from PIL import Image

    sent: dict[str, tuple[str, str]] = {}
    original = SageMakerAsyncInferenceHook.invoke_async

    def recording(self, endpoint_name, input_location, content_type, client=None, accept=""):
        sent[input_location.rsplit("/", 1)[-1]] = (content_type, accept)
        return original(self, endpoint_name, input_location, content_type, client, accept=accept)

    monkeypatch.setattr(SageMakerAsyncInferenceHook, "invoke_async", recording)
    s3 = boto3.client("s3")
    png, _ = demo.frame(1)
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(jpeg, "JPEG")
    s3.put_object(Bucket=BUCKET, Key="mixed/a.png", Body=png)
    s3.put_object(Bucket=BUCKET, Key="mixed/b.JPG", Body=jpeg.getvalue())
    frames = [f"s3://{BUCKET}/mixed/a.png", f"s3://{BUCKET}/mixed/b.JPG"]
    s3.put_object(Bucket=BUCKET, Key="shards/m.json", Body=json.dumps(frames))
    shard = {"index": 0, "frames_uri": f"s3://{BUCKET}/shards/m.json", "record_uri": f"s3://{BUCKET}/m.rec"}
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=shard, accept="application/json", waiter_delay=1
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert sent == {"a.png": ("image/png", "application/json"), "b.JPG": ("image/jpeg", "application/json")}
    summary = operator.execute_complete({}, run_trigger(deferred.value.trigger))
    assert (summary["answered"], summary["failed"]) == (2, 0)  # the handler decoded both


def test_a_frame_without_an_image_suffix_is_refused_before_any_invocation():
    from orchard.operators.async_inference import content_type_of

    assert content_type_of("s3://b/x/frame.JPEG") == "image/jpeg"
    with pytest.raises(ValueError, match="frame.bmp.*'.bmp'"):
        content_type_of("s3://b/x/frame.bmp")


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

    removed = hook.remove_scaling("detector", "AllTraffic")
    assert [item.split()[0] for item in removed] == ["alarm", "policy", "policy", "scalable"]
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert boto3.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    # a retried teardown (or the sweep) finds nothing left, succeeds and says it removed nothing
    assert hook.remove_scaling("detector", "AllTraffic") == []


# ------------------------------------------------------------------------------ input validation


def test_bad_input_fails_the_task_at_once_without_retry(data):  # noqa: F811
    """validate_inputs turns InputError into AirflowFailException: the DAG's retries=2 do not apply."""
    from airflow.sdk.exceptions import AirflowFailException

    from tests.dag_files import load_dag

    dag = load_dag(DAG_FILE)
    task = dag.get_task("validate_inputs")
    with pytest.raises(AirflowFailException, match="no frames"):
        task.python_callable(
            params={**PARAMS, "frames_prefix": f"s3://{BUCKET}/nothing/"}, run_id=RUN_ID, dag=dag
        )


def test_assets_and_param_defaults_name_the_buckets_of_the_settings(monkeypatch):
    """S3 names are global: the buckets come from ORCHARD_DATA_BUCKET and ORCHARD_ARTIFACTS_BUCKET."""
    from tests.dag_files import load_dag_module

    monkeypatch.setenv("ORCHARD_DATA_BUCKET", "acme-frames")
    monkeypatch.setenv("ORCHARD_ARTIFACTS_BUCKET", "acme-ml-artifacts")
    monkeypatch.setenv("ORCHARD_REGION", "eu-west-1")
    module = load_dag_module(DAG_FILE)

    assert module.NEW_FRAMES.uri.rstrip("/") == "s3://acme-frames/auto_labeling/frames"
    assert module.VERIFIED.uri == "s3://acme-ml-artifacts/auto_labeling/verified"
    defaults = {name: param.value for name, param in module.PARAMS.items()}
    assert defaults["frames_prefix"] == "s3://acme-frames/auto_labeling/frames/"
    assert defaults["model_data_uri"] == "s3://acme-frames/auto_labeling/model/model.tar.gz"
    assert defaults["workteam_arn"].startswith("arn:aws:sagemaker:eu-west-1:")
    source = DAG_FILE.read_text()
    assert "orchard-data" not in source and "orchard-artifacts" not in source


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
