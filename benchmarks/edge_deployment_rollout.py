"""Time from IoT job creation to all devices SUCCEEDED, in the sandbox, with simulated devices.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/edge_deployment_rollout.py [--runs 5] [--devices 2]

Starts a sandbox, compiles and packages the demo model once (Neo job → EdgePackageOperator), provisions a
fleet of simulated devices (the real include/edge_agent, polling its jobs every 0.5 s), waits until they
are up, then per run: publishes the package as a new version and times CreateJob → job COMPLETED with
every execution SUCCEEDED (DescribeJob polled every 50 ms). Each device downloads, verifies (sha256,
KMS signature, file hashes) and loads the package; no camera frames (deployment only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "plugins"))

from _bench_role import create_bench_role

from local_aws import aws_connection, client_env
from local_aws.demo_data import edge_deployment as demo
from local_aws.server import Sandbox
from local_aws.stack import pick_port


def wait_for(predicate, timeout_s: float = 300, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError("gave up waiting")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    sandbox = Sandbox(port=pick_port(0)).start()
    os.environ.update(client_env(sandbox.url))
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(sandbox.url)
    try:
        run(args)
    finally:
        sandbox.stop()


def run(args: argparse.Namespace) -> None:
    import boto3

    from orchard.hooks.iot import FleetSpec, IotHook
    from orchard.operators.edge_package import EdgePackageOperator, ensure_signing_key

    s3, sm, iot = boto3.client("s3"), boto3.client("sagemaker"), boto3.client("iot")
    for bucket in ("orchard-data", "orchard-artifacts"):
        s3.create_bucket(Bucket=bucket)
    create_bench_role(boto3.client("iam"))  # the compilation job runs as its RoleArn
    with tempfile.TemporaryDirectory() as tmp:
        out = demo.generate(Path(tmp), per_device=1, calibration=8)
        s3.upload_file(str(out / "model.tar.gz"), "orchard-data", "bench/model.tar.gz")
    sm.create_compilation_job(
        CompilationJobName="bench-neo",
        RoleArn="arn:aws:iam::123456789012:role/bench",
        InputConfig={
            "S3Uri": "s3://orchard-data/bench/model.tar.gz",
            "DataInputConfig": '{"data": [1, 3, 32, 32]}',
            "Framework": "ONNX",
        },
        OutputConfig={
            "S3OutputLocation": "s3://orchard-artifacts/bench/compiled/",
            "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
        },
        StoppingCondition={"MaxRuntimeInSeconds": 300},
    )
    compiled = wait_for(
        lambda: (sm.describe_compilation_job(CompilationJobName="bench-neo").get("ModelArtifacts") or {}).get(
            "S3ModelArtifacts"
        )
    )
    key = ensure_signing_key(boto3.client("kms"), "alias/bench-signing")
    devices = tuple(f"bench-device-{i}" for i in range(args.devices))
    spec = FleetSpec(
        "bench-fleet",
        devices,
        "orchard-data",
        "bench/captures/bench-fleet",
        "orchard-artifacts",
        "bench/packages/",
        key,
        {"buffer_size": 10, "batch_size": 5, "push_period_seconds": 1},
        simulated=True,
        poll_seconds=0.5,
    )
    fleet = IotHook(aws_conn_id="aws_default").ensure_fleet(spec)
    logs = boto3.client("logs")

    def agents_started() -> bool:
        streams = {
            s["logStreamName"]
            for s in logs.describe_log_streams(logGroupName="/orchard/edge-devices").get("logStreams", [])
        }
        if set(devices) - streams:
            return False
        return all(
            any(
                "started" in e["message"]
                for e in logs.get_log_events(logGroupName="/orchard/edge-devices", logStreamName=d)["events"]
            )
            for d in devices
        )

    wait_for(agents_started, timeout_s=600, every_s=0.5)
    seconds = []
    for attempt in range(args.runs):
        package = EdgePackageOperator(
            task_id="package",
            compiled_uri=compiled,
            model_name="bench",
            model_version=f"1.{attempt}",
            framework="ONNX",
            input_shape='{"data": [1, 3, 32, 32]}',
            target="linux_x86_64",
            bucket="orchard-artifacts",
            prefix="bench/packages/",
            signing_key=key,
        ).execute({"ti": mock.MagicMock()})
        from orchard.operators.iot import deploy_document

        started = time.perf_counter()
        iot.create_job(
            jobId=f"bench-rollout-{attempt}",
            targets=[fleet["thing_group_arn"]],
            document=json.dumps(deploy_document(package)),
        )
        job_id = f"bench-rollout-{attempt}"
        job = wait_for(
            lambda job_id=job_id: (j := iot.describe_job(jobId=job_id)["job"])["status"] == "COMPLETED" and j
        )
        elapsed = time.perf_counter() - started
        assert job["jobProcessDetails"]["numberOfSucceededThings"] == len(devices), job["jobProcessDetails"]
        seconds.append(elapsed)
    IotHook(aws_conn_id="aws_default").delete_fleet(spec)
    print(
        f"IoT job creation -> all {len(devices)} simulated devices SUCCEEDED (download, verify, load), device poll 0.5 s"
    )
    print(
        f"median {statistics.median(seconds):.2f} s over {args.runs} runs (runs: {[round(s, 2) for s in seconds]})"
    )


if __name__ == "__main__":
    main()
