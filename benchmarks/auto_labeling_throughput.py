"""auto_labeling throughput: how fast frames are submitted, and how fast every answer comes back.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/auto_labeling_throughput.py [--runs 3] [--frames 2000] [--collect-frames 60]

1. Invocations submitted per second for `--frames` frames, the seed's one-by-one loop against orchard's
   bounded fan-out (SageMakerAsyncInferenceHook.invoke_many, the DAG's 16 calls in flight), in one run,
   against a sandbox that delays every API request by 50 ms (`ORCHARD_SANDBOX_LATENCY_MS`: a regional
   round trip; locally a call takes ~3 ms and any loop looks fast). Frames are tiny PNGs so the
   endpoint's own work stays out of the way.
2. Time to collect every output of `--collect-frames` generated 640x360 road frames through the async
   endpoint (fan-out submit, then S3 listed every 0.2 s until every output exists), against the detector's
   own single-process speed on the same frames (model loaded once, then decode + detect each frame in one
   process, in the same job environment). No added API latency here: this is the endpoint's overhead.

The sandbox runs as its own process (`python -m local_aws serve`), as in `make demo`. Medians of `--runs`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins"):
    sys.path.insert(0, str(path))

import boto3  # noqa: E402
from _bench_role import create_bench_role  # noqa: E402
from _bench_sandbox import start_sandbox as start_bench_sandbox  # noqa: E402

from local_aws import aws_connection  # noqa: E402
from local_aws.demo_data import auto_labeling as demo  # noqa: E402

BUCKET = "bench-auto-labeling"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
LATENCY_MS = 50
FAN_OUT = int(os.environ.get("FAN_OUT", "16"))


def start_sandbox(latency_ms: int) -> subprocess.Popen:
    process, url = start_bench_sandbox(latency_ms)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(url)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    create_bench_role(boto3.client("iam"))  # the model's ExecutionRoleArn: its process runs as that role
    return process


def deploy_detector(name: str) -> str:
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=demo.model_tarball())
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
        AsyncInferenceConfig={
            "OutputConfig": {
                "S3OutputPath": f"s3://{BUCKET}/{name}/out/",
                "S3FailurePath": f"s3://{BUCKET}/{name}/fail/",
            }
        },
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    while (status := sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]) == "Creating":
        time.sleep(0.1)
    if status != "InService":
        raise RuntimeError(
            f"endpoint {name}: {sagemaker.describe_endpoint(EndpointName=name).get('FailureReason')}"
        )
    return name


def upload(keys_and_bodies: list[tuple[str, bytes]]) -> list[str]:
    s3 = boto3.client("s3")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kb: s3.put_object(Bucket=BUCKET, Key=kb[0], Body=kb[1]), keys_and_bodies))
    return [f"s3://{BUCKET}/{key}" for key, _ in keys_and_bodies]


def count_objects(prefix: str) -> int:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


# ------------------------------------------------------------------------------- submission rate


def submission_rates(frames: int, runs: int) -> tuple[float, float]:
    from PIL import Image

    from orchard.hooks.async_inference import SageMakerAsyncInferenceHook

    buffer = io.BytesIO()
    Image.new("RGB", (64, 128), (120, 120, 120)).save(buffer, "PNG")
    endpoint = deploy_detector("rate")
    uris = upload([(f"tiny/{i:05d}.png", buffer.getvalue()) for i in range(frames)])
    runtime = boto3.client("sagemaker-runtime")
    hook = SageMakerAsyncInferenceHook(aws_conn_id="aws_default", region_name="us-east-1")
    loop_rates, fan_rates = [], []
    for run in range(runs):
        started = time.perf_counter()
        for uri in uris:  # the seed's loop
            runtime.invoke_endpoint_async(EndpointName=endpoint, InputLocation=uri, ContentType="image/png")
        loop_rates.append(frames / (time.perf_counter() - started))
        started = time.perf_counter()
        refused = [r for r in hook.invoke_many(endpoint, uris, "image/png", FAN_OUT) if "error" in r]
        fan_rates.append(frames / (time.perf_counter() - started))
        assert not refused, refused[:3]
        print(f"  run {run + 1}: loop {loop_rates[-1]:.1f}/s, fan-out {fan_rates[-1]:.1f}/s", flush=True)
    return statistics.median(loop_rates), statistics.median(fan_rates)


# -------------------------------------------------------------------------------- collect time

DETECT_ALONE = """
import json, os, sys, time
sys.path.insert(0, os.getcwd())
import inference
model = inference.model_fn(sys.argv[1])
paths = sys.argv[2:]
started = time.perf_counter()
for path in paths:
    inference.output_fn(inference.predict_fn(inference.input_fn(open(path, "rb").read(), "image/png"), model), "application/json")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def detector_alone_seconds(frames: list[bytes]) -> float:
    from local_aws.environments import ensure_env

    folder = REPO / "include" / "auto_labeling"
    python = (
        ensure_env((folder / "requirements.txt").read_text(), label="auto-labeling", log=lambda line: None)
        / "python"
    )
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for index, body in enumerate(frames):
            Path(scratch, f"{index}.png").write_bytes(body)
            paths.append(str(Path(scratch, f"{index}.png")))
        Path(scratch, "detector.json").write_text(json.dumps(demo.DETECTOR_SETTINGS))
        Path(scratch, "driver.py").write_text(DETECT_ALONE)
        done = subprocess.run(
            [str(python), str(Path(scratch, "driver.py")), scratch, *paths],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.splitlines()[-1])["seconds"]


def collect_seconds(endpoint: str, uris: list[str], run: int) -> float:
    from orchard.hooks.async_inference import SageMakerAsyncInferenceHook

    hook = SageMakerAsyncInferenceHook(aws_conn_id="aws_default", region_name="us-east-1")
    before = count_objects(f"{endpoint}/out/")
    started = time.perf_counter()
    results = hook.invoke_many(endpoint, uris, "image/png", FAN_OUT)
    assert not [r for r in results if "error" in r]
    while count_objects(f"{endpoint}/out/") < before + len(uris):
        if count_objects(f"{endpoint}/fail/"):
            raise RuntimeError("an invocation failed")
        time.sleep(0.2)
    return time.perf_counter() - started


def collect_times(count: int, runs: int) -> tuple[float, float, float]:
    """Medians of the detector alone, through the endpoint, and of each run's ratio (one after the other,
    so both see the same machine load; the order alternates)."""
    frames = [demo.frame(seed)[0] for seed in range(count)]
    endpoint = deploy_detector("collect")
    uris = upload([(f"frames/{i:05d}.png", body) for i, body in enumerate(frames)])
    alone, through = [], []
    for run in range(runs):
        if run % 2:
            through.append(collect_seconds(endpoint, uris, run))
            alone.append(detector_alone_seconds(frames))
        else:
            alone.append(detector_alone_seconds(frames))
            through.append(collect_seconds(endpoint, uris, run))
        print(
            f"  run {run + 1}: detector alone {alone[-1]:.2f} s, through the endpoint {through[-1]:.2f} s "
            f"({through[-1] / alone[-1]:.2f}x)",
            flush=True,
        )
    ratio = statistics.median(t / a for t, a in zip(through, alone, strict=True))
    return statistics.median(alone), statistics.median(through), ratio


def main() -> None:
    import logging

    logging.disable(logging.INFO)  # botocore's per-client endpoint lines would drown the figures
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--collect-frames", type=int, default=60)
    parser.add_argument("--only", choices=["rate", "collect"])
    args = parser.parse_args()
    if args.only != "collect":
        sandbox = start_sandbox(LATENCY_MS)
        try:
            print(f"submission rate, {args.frames} frames, sandbox API latency {LATENCY_MS} ms:")
            loop, fan = submission_rates(args.frames, args.runs)
        finally:
            sandbox.terminate()
            sandbox.wait()
        print(
            f"  median of {args.runs}: one-by-one loop {loop:.1f}/s; fan-out ({FAN_OUT} in flight) {fan:.1f}/s "
            f"= {fan / loop:.1f}x the loop\n"
        )
    if args.only != "rate":
        sandbox = start_sandbox(0)
        try:
            print(f"collect every output, {args.collect_frames} frames of 640x360:")
            alone, through, ratio = collect_times(args.collect_frames, args.runs)
        finally:
            sandbox.terminate()
            sandbox.wait()
        print(
            f"  median of {args.runs}: detector alone {alone:.2f} s ({args.collect_frames / alone:.1f} frames/s); "
            f"through the async endpoint {through:.2f} s; median per-run ratio {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
