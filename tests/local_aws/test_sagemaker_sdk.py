"""Contract 7: the SageMaker Python SDK v2, as users run it, works against the sandbox.

The SDK lives in a test-only environment (tests/local_aws/sdk/requirements.txt, built like a job
environment, never Airflow's .venv); tests/local_aws/sdk/driver.py runs one SDK flow there against the
sandbox and prints `RESULT <json>`. The SDK needs two things from its user in the sandbox (README):
a default bucket (else it asks STS at its hard-coded regional endpoint) and telemetry off.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest

from local_aws import client_env
from local_aws.environments import ensure_env

SDK_DIR = Path(__file__).resolve().parent / "sdk"
BUCKET = "sdk-bucket"
PROCESSING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/sdk-processing:1"
ECHO_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/echo-model:1"


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The SDK's environment: built on first use (minutes), cached in the job environment cache."""
    requirements = (SDK_DIR / "requirements.txt").read_text()
    return ensure_env(requirements, label="sagemaker-sdk", log=lambda line: None) / "python"


def run_sdk(sdk_python: Path, sandbox, *args: str, timeout: float = 600) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(client_env(sandbox.url))
    env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(SDK_DIR / "sdk_config.yaml")  # TelemetryOptOut: true
    env["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [str(sdk_python), str(SDK_DIR / "driver.py"), *args],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, output[-4000:]
    return json.loads(results[-1][len("RESULT ") :]), output


def test_pytorch_estimator_fit_streams_the_jobs_logs_and_completes(aws, sdk_python):
    result, output = run_sdk(sdk_python, aws, "estimator", BUCKET)

    assert result["status"] == "Completed"
    # fit()'s default logs="All" reads the job's CloudWatch stream: the entry point's own lines.
    assert "epoch=1 loss=0.500" in output and "training done" in output
    assert result["metrics"][0]["MetricName"] == "loss" and result["metrics"][0]["Value"] == 0.5
    bucket, key = result["model"][len("s3://") :].split("/", 1)
    assert boto3.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_processor_run_with_defaults_waits_streams_logs_and_uploads_outputs(aws, sdk_python):
    result, output = run_sdk(sdk_python, aws, "processor", BUCKET, PROCESSING_IMAGE)

    assert result["status"] == "Completed", result["reason"]
    assert json.loads(result["output"]) == {"a.txt": 2}
    assert "counted 1 files" in output  # Processor.run(logs=True) read ProcessingResources and the logs


def test_framework_processor_run_with_defaults(aws, sdk_python):
    result, output = run_sdk(sdk_python, aws, "framework_processor", BUCKET)

    assert result["status"] == "Completed", result["reason"]
    assert json.loads(result["output"]) == {"a.txt": 3}
    assert "counted 1 files" in output


def test_async_predictor_predict_async_and_get_result(aws, sdk_python):
    result, _ = run_sdk(sdk_python, aws, "async", BUCKET, ECHO_IMAGE)

    assert result["result"] == {"items": 3, "model": "sdk-echo"}
    # A handler error reaches the SDK as AsyncInferenceModelError carrying the model server's JSON.
    assert result["failure"].startswith("AsyncInferenceModelError")
    assert (
        "'type': 'InternalServerException'" in result["failure"] and "KeyError: 'items'" in result["failure"]
    )
