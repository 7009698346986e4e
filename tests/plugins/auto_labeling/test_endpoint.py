"""orchard.auto_labeling.endpoint: this run's model and config created once (a retry finds them), removed by
their names whatever exists; an existing endpoint's resources are never touched."""

from __future__ import annotations

import boto3

from tests.local_aws.test_async_endpoints_and_labeling import BUCKET, PYTORCH_INFERENCE, ROLE


def owned_plan(**overrides) -> dict:
    plan = {
        "owned": True,
        "dag_id": "auto_labeling",
        "conn_id": "aws_default",
        "model_id": "m",
        "model_name": "run-model",
        "endpoint_config_name": "run-config",
        "endpoint_name": "run-endpoint",
        "role_arn": ROLE,
        "image_uri": PYTORCH_INFERENCE,
        "model_data_uri": f"s3://{BUCKET}/model.tar.gz",
        "instance_type": "ml.m5.xlarge",
        "output_path": f"s3://{BUCKET}/out/",
        "failure_path": f"s3://{BUCKET}/fail/",
        "max_concurrent_per_instance": 4,
    }
    return {**plan, **overrides}


def test_the_runs_model_and_config_are_created_once_and_removed_by_their_names(aws):
    from orchard.auto_labeling import endpoint

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")
    plan = owned_plan()
    for _ in range(2):  # a retried task finds what its first try created
        assert endpoint.create_model(plan) == "run-model"
        assert endpoint.create_endpoint_config(plan) == "run-config"
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["run-model"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName="run-config")
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3FailurePath"] == f"s3://{BUCKET}/fail/"
    assert config["ProductionVariants"][0]["VariantName"] == endpoint.VARIANT

    endpoint.remove_endpoint_resources(plan)  # no endpoint was deployed: the rest is removed all the same

    assert sagemaker.list_models()["Models"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert endpoint.endpoint_seconds(sagemaker, plan) == 0.0
    endpoint.remove_endpoint_resources(plan)  # a retried cleanup finds nothing left, and succeeds


def test_an_existing_endpoints_resources_are_left_as_they_are(aws):
    from orchard.auto_labeling import endpoint

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="team-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": PYTORCH_INFERENCE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
    )
    plan = owned_plan(owned=False, model_name="", endpoint_config_name="", endpoint_name="team-endpoint")

    assert endpoint.create_model(plan) == "" and endpoint.create_endpoint_config(plan) == ""
    assert endpoint.scale_endpoint(plan) == {}
    endpoint.remove_endpoint_resources(plan)

    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["team-model"]
    assert endpoint.endpoint_seconds(sagemaker, plan) == 0.0


def test_the_sweep_finds_the_runs_resources_by_name_without_the_plan_and_says_what_it_removed(aws):
    """The sweep builds the names from the run (naming), not from validate_inputs' XCom, and reports what
    the cleanup left: delete_endpoint failing before its calls left the model and the config."""
    from orchard import naming
    from orchard.auto_labeling import endpoint

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    sagemaker = boto3.client("sagemaker")
    run_id = "manual__2026-12-07T03:00:00+00:00"
    names = endpoint.sweep_plan({"existing_endpoint_name": None}, "auto_labeling", run_id)
    assert names["model_name"] == naming.resource_name("sagemaker_model", "auto_labeling", run_id)
    plan = owned_plan(model_name=names["model_name"], endpoint_config_name=names["endpoint_config_name"])
    endpoint.create_model(plan)
    endpoint.create_endpoint_config(plan)

    swept = endpoint.sweep_run_resources({"existing_endpoint_name": None}, "auto_labeling", run_id)

    assert swept == {
        "delete_endpoint": [
            f"endpointconfig {names['endpoint_config_name']}",
            f"model {names['model_name']}",
        ],
        "stop_labeling_job": [],
    }
    assert (
        sagemaker.list_models()["Models"] == [] and sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    )
    # the teardowns finished: the sweep removes nothing and says so
    assert endpoint.sweep_run_resources({}, "auto_labeling", run_id) == {
        "delete_endpoint": [],
        "stop_labeling_job": [],
    }


def test_the_sweep_leaves_an_existing_endpoint_alone():
    from orchard.auto_labeling import endpoint

    plan = endpoint.sweep_plan({"existing_endpoint_name": "team-endpoint"}, "auto_labeling", "manual__x")
    assert plan["owned"] is False
    assert endpoint.remove_endpoint_resources(plan) == []  # no AWS call at all: nothing of it is the run's


def test_the_setups_clients_come_from_the_plans_connection_without_reading_the_settings(aws, reads):
    """create_model and create_endpoint_config are on the critical path (issue 17.1): the plan names the
    connection, so neither reads orchard's settings again (a Variable lookup per field env lacks)."""
    from orchard.auto_labeling import endpoint

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    plan = owned_plan()

    assert (endpoint.create_model(plan), endpoint.create_endpoint_config(plan)) == ("run-model", "run-config")
    assert endpoint.remove_endpoint_resources(plan) == ["endpointconfig run-config", "model run-model"]
    assert reads.settings == 0


def test_the_cleanup_and_the_sweep_remove_everything_on_one_aws_session(aws, reads):
    """sweep_leftovers is on the critical path (issue 17.1): the labeling job's check, the scaling's removal
    (Application Auto Scaling, CloudWatch) and the endpoint's (SageMaker) share ONE session (before: four,
    each with the connection's AssumeRole and a user-agent stack walk); delete_endpoint's removal too."""
    from orchard.auto_labeling import endpoint
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    run_id = "manual__2026-12-07T03:00:00+00:00"
    names = endpoint.sweep_plan({}, "auto_labeling", run_id)
    plan = owned_plan(**{key: names[key] for key in ("model_name", "endpoint_config_name", "endpoint_name")})
    endpoint.create_model(plan)
    endpoint.create_endpoint_config(plan)
    scaling = EndpointAutoScalingHook(aws_conn_id="aws_default", region_name="us-east-1")
    scaling.scale_with_backlog(plan["endpoint_name"], endpoint.VARIANT, max_instances=2)
    reads.sessions = 0

    swept = endpoint.sweep_run_resources({}, "auto_labeling", run_id)

    assert reads.sessions == 1
    assert swept["delete_endpoint"][-2:] == [
        f"endpointconfig {names['endpoint_config_name']}",
        f"model {names['model_name']}",
    ]
    assert any(item.startswith("scalable target") for item in swept["delete_endpoint"])
    reads.sessions = 0
    assert endpoint.remove_endpoint_resources(plan) == []  # delete_endpoint after the sweep: nothing left
    assert reads.sessions == 1
