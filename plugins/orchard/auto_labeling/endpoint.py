"""The async endpoint's lifecycle: an existing endpoint checked, or this run's model, endpoint config
(AsyncInferenceConfig) and autoscaling created, then removed by their deterministic names whatever failed.

The endpoint itself is created and awaited by the DAG's `deploy_endpoint` operator
(orchard.operators.async_endpoint). Each function here creates or removes what it names only if this run
owns the endpoint (`plan["owned"]`): an existing endpoint is used as is and never touched.
"""

from __future__ import annotations

import time
from typing import Any

from orchard import aws
from orchard.errors import InputError

VARIANT = "AllTraffic"


def describe_existing(name: str) -> dict[str, Any]:
    """An endpoint the run uses as is: it must be InService and asynchronous. Returns where its answers
    land and its instance type (for the report)."""
    from botocore.exceptions import ClientError

    sagemaker = aws.client("sagemaker")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        raise InputError(f"existing_endpoint_name {name}: {error.response['Error']['Message']}") from None
    if endpoint["EndpointStatus"] != "InService":
        raise InputError(f"endpoint {name} is {endpoint['EndpointStatus']}, not InService")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    output = config.get("AsyncInferenceConfig", {}).get("OutputConfig")
    if not output:
        raise InputError(
            f"endpoint {name} is not asynchronous (its config has no AsyncInferenceConfig): "
            "give an async endpoint, or a model to deploy one"
        )
    return {
        "output_path": output["S3OutputPath"],
        "failure_path": output.get("S3FailurePath", output["S3OutputPath"]),
        "instance_type": config["ProductionVariants"][0].get("InstanceType", "unknown"),
    }


# ----------------------------------------------------------------------------------- setup


def create_model(plan: dict[str, Any]) -> str:
    if not plan["owned"]:
        return ""
    sagemaker = aws.client("sagemaker")
    if not _exists(sagemaker.describe_model, ModelName=plan["model_name"]):
        sagemaker.create_model(
            ModelName=plan["model_name"],
            ExecutionRoleArn=plan["role_arn"],
            PrimaryContainer={
                "Image": plan["image_uri"],
                "ModelDataUrl": plan["model_data_uri"],
                "Environment": {"MODEL_NAME": plan["model_id"]},
            },
            Tags=[{"Key": "orchard:dag", "Value": plan["dag_id"]}],
        )
    return plan["model_name"]


def create_endpoint_config(plan: dict[str, Any]) -> str:
    if not plan["owned"]:
        return ""
    sagemaker = aws.client("sagemaker")
    if not _exists(sagemaker.describe_endpoint_config, EndpointConfigName=plan["endpoint_config_name"]):
        sagemaker.create_endpoint_config(
            EndpointConfigName=plan["endpoint_config_name"],
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": plan["model_name"],
                    "InstanceType": plan["instance_type"],
                    "InitialInstanceCount": 1,
                }
            ],
            AsyncInferenceConfig={
                "OutputConfig": {"S3OutputPath": plan["output_path"], "S3FailurePath": plan["failure_path"]},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": plan["max_concurrent_per_instance"]},
            },
            Tags=[{"Key": "orchard:dag", "Value": plan["dag_id"]}],
        )
    return plan["endpoint_config_name"]


def scale_endpoint(plan: dict[str, Any]) -> dict[str, str]:
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    if not plan["owned"]:
        print(f"endpoint {plan['endpoint_name']} is not this run's: its scaling is left as it is")
        return {}
    hook = EndpointAutoScalingHook(aws_conn_id=plan["conn_id"])
    return hook.scale_with_backlog(plan["endpoint_name"], VARIANT, max_instances=plan["max_instances"])


def _exists(describe: Any, **kwargs: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe(**kwargs)
        return True
    except ClientError as error:
        if (
            "Could not find" in error.response["Error"]["Message"]
            or error.response["Error"]["Code"] == "ResourceNotFound"
        ):
            return False
        raise


# -------------------------------------------------------------------------------- teardown


def remove_endpoint_resources(plan: dict[str, Any]) -> None:
    """The run's cleanup, whatever failed and wherever: every resource is found by its deterministic name
    (orchard.naming, in the plan), so a setup that failed after creating is cleaned as well as one that
    succeeded. Scaling first (alarm, policies, scalable target), then endpoint, config and model."""
    remove_autoscaling(plan)
    delete_endpoint_stack(plan)


def remove_autoscaling(plan: dict[str, Any]) -> None:
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    if not plan["owned"]:
        return print(f"endpoint {plan['endpoint_name']} is not this run's: its scaling is left as it is")
    removed = EndpointAutoScalingHook(aws_conn_id=plan["conn_id"]).remove_scaling(
        plan["endpoint_name"], VARIANT
    )
    print("removed: " + ", ".join(removed))


def delete_endpoint_stack(plan: dict[str, Any]) -> None:
    """Endpoint, then its config, then the model; each one only if this run created it and it still exists."""
    if not plan["owned"]:
        return print(f"endpoint {plan['endpoint_name']} is not this run's: left as it is")
    sagemaker = aws.client("sagemaker")
    for describe, delete, key, name in (
        (sagemaker.describe_endpoint, sagemaker.delete_endpoint, "EndpointName", plan["endpoint_name"]),
        (
            sagemaker.describe_endpoint_config,
            sagemaker.delete_endpoint_config,
            "EndpointConfigName",
            plan["endpoint_config_name"],
        ),
        (sagemaker.describe_model, sagemaker.delete_model, "ModelName", plan["model_name"]),
    ):
        if _exists(describe, **{key: name}):
            delete(**{key: name})
            print(f"deleted {key[:-4].lower()} {name}")
        else:
            print(f"no {key[:-4].lower()} {name}: nothing to delete")


# --------------------------------------------------------------------------------- lifetime


def endpoint_seconds(plan: dict[str, Any]) -> float:
    """How long this run's endpoint has existed so far (0 for an existing endpoint: not this run's cost)."""
    if not plan["owned"]:
        return 0.0
    try:
        endpoint = aws.client("sagemaker").describe_endpoint(EndpointName=plan["endpoint_name"])
    except Exception:
        return 0.0
    created = endpoint["CreationTime"]
    return max(0.0, time.time() - created.timestamp())
