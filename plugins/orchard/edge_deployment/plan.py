"""edge_deployment's plan: the run's S3 prefixes, job names and the prepare job's request (pure: params,
settings, run_id in; JSON-safe dicts out). Names come from `orchard.naming`, so a retry finds its job."""

from __future__ import annotations

from typing import Any

from orchard import naming
from orchard.edge_deployment import DAG_ID


def run_plan(params: dict[str, Any], input_shape: str, run_id: str, settings: Any) -> dict[str, Any]:
    """What the job tasks after validate_model read (its XCom, multiple outputs): the prepare job's request,
    where it writes the model and the drift reference, where Neo writes, the role both run as."""
    prepared = f"s3://{settings.artifacts_bucket}/" + naming.resource_name(
        "s3_prefix", DAG_ID, run_id, "prepared"
    )
    return {
        "role_arn": settings.sagemaker_execution_role_arn,
        "input_shape": input_shape,
        "processing_config": processing_config(params, input_shape, prepared, run_id, settings),
        "prepared_model_uri": f"{prepared}model/model.tar.gz",
        "prepared_reference_uri": f"{prepared}reference/",
        "compile_output_uri": f"s3://{settings.artifacts_bucket}/"
        + naming.resource_name("s3_prefix", DAG_ID, run_id, "compiled"),
        "artifacts_bucket": settings.artifacts_bucket,
        "data_bucket": settings.data_bucket,
    }


PREPARE_INSTANCE_TYPE = "ml.m5.large"
PREPARE_MAX_RUNTIME_S = 1800


def processing_config(
    params: dict[str, Any], input_shape: str, prepared: str, run_id: str, settings: Any
) -> dict:
    """The prepare job (include/edge_compiler/prepare.py): reference distribution, and the int8 model if asked."""

    def channel(name: str, uri: str) -> dict:
        return {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": f"/opt/ml/processing/input/{name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }

    def output(name: str) -> dict:
        return {
            "OutputName": name,
            "S3Output": {
                "S3Uri": f"{prepared}{name}/",
                "S3UploadMode": "EndOfJob",
                "LocalPath": f"/opt/ml/processing/output/{name}",
            },
        }

    return {
        "ProcessingJobName": naming.resource_name("sagemaker_processing_job", DAG_ID, run_id, "prepare"),
        "RoleArn": settings.sagemaker_execution_role_arn,
        "AppSpecification": {
            "ImageUri": settings.image_uri("orchard/edge-compiler"),
            "ContainerEntrypoint": ["python3", "/opt/program/prepare.py"],
            "ContainerArguments": [
                "--input-shape",
                input_shape,
                "--quantization",
                params["quantization"],
                "--framework",
                params["framework"],
                "--root",
                "/opt/ml/processing",
                "--failure-file",
                "/opt/ml/output/failure",
                # for messages: an input error names the user's S3 objects
                "--model-uri",
                params["model_uri"],
                "--calibration-uri",
                params["calibration_uri"],
            ],
        },
        "ProcessingInputs": [
            channel("model", params["model_uri"]),
            channel("calibration", params["calibration_uri"]),
        ],
        "ProcessingOutputConfig": {"Outputs": [output("model"), output("reference")]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": PREPARE_INSTANCE_TYPE, "VolumeSizeInGB": 10}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": PREPARE_MAX_RUNTIME_S},
    }
