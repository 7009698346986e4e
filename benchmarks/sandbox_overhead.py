"""Sandbox overhead: submit → terminal state for jobs that exit at once, once their environment exists.

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 7]

Measures AWS Batch (submit_job → SUCCEEDED) and SageMaker script-mode training (create_training_job →
Completed, model.tar.gz uploaded) with a client polling every 20 ms. The first run of each is reported
apart and left out of the median: on a fresh machine it builds the image's environment (the "pull").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ORCHARD_JOB_ROOTS", str(REPO / "tests" / "local_aws" / "jobs"))

import boto3  # noqa: E402
from _bench_role import create_bench_role  # noqa: E402

from local_aws import client_env  # noqa: E402
from local_aws.s3io import tar_gz  # noqa: E402
from local_aws.server import Sandbox  # noqa: E402

POLL_S = 0.02


def wait(read_state, terminal: set[str]) -> str:
    while (state := read_state()) not in terminal:
        time.sleep(POLL_S)
    return state


def batch_job_seconds(batch, name: str) -> float:
    started = time.perf_counter()
    job_id = batch.submit_job(jobName=name, jobQueue="bench-queue", jobDefinition="bench-noop")["jobId"]
    state = wait(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"], {"SUCCEEDED", "FAILED"})
    assert state == "SUCCEEDED", state
    return time.perf_counter() - started


def training_job_seconds(sagemaker, name: str) -> float:
    started = time.perf_counter()
    sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/bench",
        AlgorithmSpecification={
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
            "TrainingInputMode": "File",
        },
        HyperParameters={
            "sagemaker_program": json.dumps("noop.py"),
            "sagemaker_submit_directory": json.dumps("s3://bench/code/sourcedir.tar.gz"),
        },
        OutputDataConfig={"S3OutputPath": "s3://bench/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    state = wait(
        lambda: sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )
    assert state == "Completed", sagemaker.describe_training_job(TrainingJobName=name).get("FailureReason")
    return time.perf_counter() - started


def set_up(url: str) -> tuple:
    os.environ.update(client_env(url))
    s3, batch, sagemaker = boto3.client("s3"), boto3.client("batch"), boto3.client("sagemaker")
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="code/sourcedir.tar.gz", Body=tar_gz({"noop.py": b"print('done')\n"}))
    role = create_bench_role(boto3.client("iam"))  # jobs run with their role's credentials
    env = batch.create_compute_environment(
        computeEnvironmentName="bench-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName="bench-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName="bench-noop",
        type="container",
        containerProperties={
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0",
            "command": ["python", "-c", "pass"],
            "jobRoleArn": role,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
        },
    )
    return batch, sagemaker


def report(label: str, first: float, runs: list[float]) -> None:
    print(
        f"{label:<34} first run {first:6.2f} s | median of {len(runs)} {statistics.median(runs):5.2f} s "
        f"(min {min(runs):.2f}, max {max(runs):.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sandbox = Sandbox(port=4580).start()
    try:
        batch, sagemaker = set_up(sandbox.url)
        first = batch_job_seconds(batch, "bench-warm")
        report(
            "Batch submit -> SUCCEEDED",
            first,
            [batch_job_seconds(batch, f"bench-{i}") for i in range(args.runs)],
        )
        first = training_job_seconds(sagemaker, "bench-warm")
        report(
            "Training create -> Completed",
            first,
            [training_job_seconds(sagemaker, f"bench-{i}") for i in range(args.runs)],
        )
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
