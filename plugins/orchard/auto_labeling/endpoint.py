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


def describe_existing(sagemaker: Any, name: str) -> dict[str, Any]:
    """An endpoint the run uses as is: it must be InService and asynchronous. Returns where its answers
    land and its instance type (for the report)."""
    from botocore.exceptions import ClientError

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
    sagemaker = aws.client("sagemaker", conn_id=plan["conn_id"])  # the plan holds it: no settings read
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
    sagemaker = aws.client("sagemaker", conn_id=plan["conn_id"])  # the plan holds it: no settings read
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


def remove_endpoint_resources(plan: dict[str, Any], clients: aws.SessionClients | None = None) -> list[str]:
    """The run's cleanup, whatever failed and wherever: every resource is found by its deterministic name
    (orchard.naming, in the plan), so a setup that failed after creating is cleaned as well as one that
    succeeded. Scaling first (alarm, policies, scalable target), then endpoint, config and model.
    Returns what it removed (empty when nothing was left). Application Auto Scaling, CloudWatch and
    SageMaker on ONE session (`clients`, else its own; made only if a call is needed): a hook each built
    three, each with the connection's AssumeRole and the user-agent stack walk."""
    clients = clients or aws.session_clients(plan["conn_id"])
    return remove_autoscaling(plan, clients) + delete_endpoint_stack(plan, clients)


def sweep_plan(params: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """What `remove_endpoint_resources` and `stop_labeling_job` need, from the run itself (naming, params,
    settings), not from validate_inputs' XCom: the sweep finds the resources even if that task failed."""
    from orchard import naming
    from orchard.settings import load_settings

    return {
        "owned": not (params.get("existing_endpoint_name") or "").strip(),
        "conn_id": load_settings().aws_conn_id,
        "endpoint_name": naming.resource_name("sagemaker_endpoint", dag_id, run_id),
        "endpoint_config_name": naming.resource_name("sagemaker_endpoint_config", dag_id, run_id),
        "model_name": naming.resource_name("sagemaker_model", dag_id, run_id),
        "labeling_job_name": naming.resource_name("sagemaker_labeling_job", dag_id, run_id),
    }


def sweep_run_resources(params: dict[str, Any], dag_id: str, run_id: str) -> dict[str, list[str]]:
    """The sweep (orchard.sweep): the teardowns' own removal run again by name; teardown -> what it left."""
    from orchard.auto_labeling.labeling import stop_labeling_job

    plan = sweep_plan(params, dag_id, run_id)
    clients = aws.session_clients(plan["conn_id"])  # one session for the four services: see above
    stopped = stop_labeling_job(plan, clients.client("sagemaker")) == "Stopping"
    return {
        "delete_endpoint": remove_endpoint_resources(plan, clients),
        "stop_labeling_job": [f"labeling job {plan['labeling_job_name']} (stopped)"] if stopped else [],
    }


def remove_autoscaling(plan: dict[str, Any], clients: aws.SessionClients) -> list[str]:
    from orchard.hooks.autoscaling import EndpointAutoScalingHook

    if not plan["owned"]:
        print(f"endpoint {plan['endpoint_name']} is not this run's: its scaling is left as it is")
        return []
    removed = EndpointAutoScalingHook(aws_conn_id=plan["conn_id"]).remove_scaling(
        plan["endpoint_name"],
        VARIANT,
        autoscaling=clients.client("application-autoscaling"),
        cloudwatch=clients.client("cloudwatch"),
    )
    print("removed: " + (", ".join(removed) or "nothing (no scaling left)"))
    return removed


def delete_endpoint_stack(plan: dict[str, Any], clients: aws.SessionClients) -> list[str]:
    """Endpoint, then its config, then the model; each one only if this run created it and it still exists.
    Returns what it deleted."""
    if not plan["owned"]:
        print(f"endpoint {plan['endpoint_name']} is not this run's: left as it is")
        return []
    sagemaker = clients.client("sagemaker")
    deleted = []
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
            deleted.append(f"{key[:-4].lower()} {name}")
            print(f"deleted {key[:-4].lower()} {name}")
        else:
            print(f"no {key[:-4].lower()} {name}: nothing to delete")
    return deleted


# --------------------------------------------------------------------------------- lifetime


def endpoint_seconds(sagemaker: Any | None, plan: dict[str, Any]) -> float:
    """How long this run's endpoint has existed so far (0 for an existing endpoint: not this run's cost)."""
    if not plan["owned"]:
        return 0.0
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=plan["endpoint_name"])
    except Exception:
        return 0.0
    created = endpoint["CreationTime"]
    return max(0.0, time.time() - created.timestamp())
