"""orchard.auto_labeling.plan: the run's plan, made only from valid input, before anything billable."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.local_aws.test_async_endpoints_and_labeling import BUCKET, deploy
from tests.plugins.auto_labeling.inputs import PARAMS, RUN_ID

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "auto_labeling.py"


def test_the_model_adapter_sets_content_type_and_accept(data):
    """orchard's handler: each frame's type, JSON back; a JumpStart detector: application/x-image in,
    application/json;verbose out (its class names come only in the verbose answer)."""
    from orchard.auto_labeling.plan import plan_run

    plan = plan_run(PARAMS, "auto_labeling", RUN_ID)
    assert (plan["content_type"], plan["accept"]) == ("", "application/json")
    plan = plan_run({**PARAMS, "model_format": "jumpstart"}, "auto_labeling", RUN_ID)
    assert (plan["content_type"], plan["accept"]) == ("application/x-image", "application/json;verbose")
    from tests.dag_files import load_dag

    invoke = load_dag(DAG_FILE).get_task("invoke")
    # the plan's fields reach invoke as XCom arguments (validate_inputs' multiple outputs), not Jinja pulls
    for field in ("content_type", "accept", "endpoint_name"):
        argument = invoke.partial_kwargs[field]
        assert (argument.operator.task_id, argument.key) == ("validate_inputs", field)


def test_a_plan_caps_the_frames_and_splits_them_into_shards(data):
    from orchard.auto_labeling.plan import plan_run

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
    from orchard.auto_labeling.plan import plan_run
    from orchard.errors import InputError

    with pytest.raises(InputError, match=message):
        plan_run({**PARAMS, **change}, "auto_labeling", RUN_ID)
    assert boto3.client("sagemaker").list_models()["Models"] == []


@pytest.mark.parametrize(
    ("change", "region", "message"),
    [
        ({}, "eu-west-3", "not listed for eu-west-3.*stop_at_manifest"),
        (
            {"workteam_arn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/nobody"},
            "us-east-1",
            "nobody does not exist: create the private workteam",
        ),
        (
            {"workteam_arn": PARAMS["workteam_arn"].replace("us-east-1", "us-west-2")},
            "us-east-1",
            "is in us-west-2, but the labeling job runs in us-east-1",
        ),
        (
            {"cors": None},
            "us-east-1",
            f"frames bucket {BUCKET} has no CORS rule allowing GET.*put-bucket-cors",
        ),
        (
            {"cors": {"CORSRules": [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"]}]}},
            "us-east-1",
            "no CORS rule allowing GET",
        ),
    ],
)
def test_ground_truth_prerequisites_are_checked_before_the_endpoint(
    data, monkeypatch, change, region, message
):
    """Region, workteam and CORS: refused in validate_inputs, not after every frame was inferred."""
    from orchard.auto_labeling.plan import plan_run
    from orchard.errors import InputError

    monkeypatch.setenv("ORCHARD_REGION", region)
    if "cors" in change:
        data.delete_bucket_cors(Bucket=BUCKET)
        if change["cors"]:
            data.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=change.pop("cors"))
        change.pop("cors", None)
    with pytest.raises(InputError, match=message):
        plan_run({**PARAMS, **change}, "auto_labeling", RUN_ID)
    assert boto3.client("sagemaker").list_models()["Models"] == []
    # Ending at the manifest needs no Ground Truth: the same input plans.
    assert plan_run({**PARAMS, **change, "stop_at_manifest": True}, "auto_labeling", RUN_ID)["frames"] == 5


def test_an_existing_endpoint_must_be_asynchronous(data):
    from orchard.auto_labeling.plan import plan_run
    from orchard.errors import InputError

    assert deploy(boto3.client("sagemaker"), "realtime", async_config=False)[-1] == "InService"
    with pytest.raises(InputError, match="not asynchronous"):
        plan_run(
            {**PARAMS, "existing_endpoint_name": "realtime", "model_data_uri": ""}, "auto_labeling", RUN_ID
        )


def test_the_plan_reads_the_settings_once_and_calls_s3_and_sagemaker_on_one_session(
    data, reads, sessions_built, in_flight
):
    """validate_inputs is first on the critical path (issue 17.1): one settings read (each one looks up every
    field the environment lacks as an Airflow Variable), one AWS session for S3 and SageMaker (each session:
    credentials, the connection's AssumeRole; each hook's client config: a walk of the call stack), and the
    shards written at once."""
    from orchard.auto_labeling.plan import plan_run

    plan = plan_run(PARAMS, "auto_labeling", RUN_ID)

    assert len(plan["shards"]) == 3
    assert (reads.settings, len(sessions_built)) == (1, 1)
    assert in_flight.peak["PutObject"] == 3  # the three shards' frame lists


def test_the_frames_and_ground_truths_prerequisites_are_checked_at_once(data, monkeypatch):
    """Listing and reading the frames and checking Ground Truth's workteam and CORS rule are independent
    reads: the frames' check waits here until Ground Truth's has started (one after the other, it never
    would)."""
    import threading

    from orchard.auto_labeling import plan as plan_module

    started = threading.Event()
    overlapped = []
    list_frames, check_ground_truth = plan_module.list_frames, plan_module.check_ground_truth

    def frames_waiting(*args, **kwargs):
        overlapped.append(started.wait(timeout=5))
        return list_frames(*args, **kwargs)

    def ground_truth_started(*args, **kwargs):
        started.set()
        return check_ground_truth(*args, **kwargs)

    monkeypatch.setattr(plan_module, "list_frames", frames_waiting)
    monkeypatch.setattr(plan_module, "check_ground_truth", ground_truth_started)

    assert plan_module.plan_run(PARAMS, "auto_labeling", RUN_ID)["frames"] == 5
    assert overlapped == [True]


def test_of_several_bad_inputs_the_first_checked_is_the_one_reported(data):
    """The checks run at once, yet report in one order whichever answers first: the frames before Ground
    Truth's prerequisites before the model."""
    from orchard.auto_labeling.plan import plan_run
    from orchard.errors import InputError

    data.delete_bucket_cors(Bucket=BUCKET)
    missing_model = {"model_data_uri": f"s3://{BUCKET}/missing.tar.gz"}
    with pytest.raises(InputError, match="no frames"):
        plan_run(
            {**PARAMS, **missing_model, "frames_prefix": f"s3://{BUCKET}/nothing/"}, "auto_labeling", RUN_ID
        )
    with pytest.raises(InputError, match="no CORS rule allowing GET"):
        plan_run({**PARAMS, **missing_model}, "auto_labeling", RUN_ID)
