"""auto_labeling's own work on its critical path: `build_manifest` reading the endpoint's answers.

    .venv/bin/python benchmarks/auto_labeling_task_time.py [--runs 5] [--answers 300] [--latency-ms 0]

Against a sandbox of its own (`python -m local_aws serve`, `--latency-ms` added to every API call), with
`--answers` answers in S3 as the demo's endpoint writes them (the demo labels 300 frames): the task's own
function `orchard.auto_labeling.predictions.build_manifest`, timed with its answers read one by one
(READ_CONCURRENCY = 1, as before) and with READ_CONCURRENCY GETs in flight, alternating within one run.
Prints the median of `--runs` for each and their ratio (pooled / one by one).
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
for path in (REPO, REPO / "plugins"):
    sys.path.insert(0, str(path))

import boto3  # noqa: E402
from _bench_sandbox import start_sandbox  # noqa: E402

from local_aws import aws_connection  # noqa: E402

BUCKET = "bench-auto-labeling"
BASE = f"s3://{BUCKET}/auto_labeling/bench/"
RESPONSE = {
    "model": "opencv-hog-people-detector",
    "image_size": {"width": 640, "height": 360, "depth": 3},
    "detections": [{"label": "pedestrian", "box": [10, 20, 40, 80], "score": 0.9}],
}
PLAN = {
    "base_uri": BASE,
    "model_id": "opencv-hog-people-detector",
    "categories": ["pedestrian"],
    "threshold": 0.5,
    "labeling_job_name": "bench-job",
    "mode": "verify",
}


def seed(answers: int) -> dict:
    """`answers` answered frames (their output objects) and the predictions file collect_predictions writes."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    answered = []
    for i in range(answers):
        key = f"auto_labeling/bench/async/output/{i:05d}.out"
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(RESPONSE).encode())
        answered.append({"input": f"s3://{BUCKET}/frames/{i:05d}.png", "output": f"s3://{BUCKET}/{key}"})
    predictions_uri = f"{BASE}invocations/answered.json"
    s3.put_object(Bucket=BUCKET, Key=predictions_uri.split("/", 3)[3], Body=json.dumps(answered).encode())
    return {
        "predictions_uri": predictions_uri,
        "failed": 0,
        "failures_uri": f"{BASE}invocations/failures.json",
    }


def timed(collected: dict, concurrency: int) -> float:
    from orchard.auto_labeling import predictions

    predictions.READ_CONCURRENCY = concurrency
    started = time.perf_counter()
    manifest = predictions.build_manifest(PLAN, collected)
    elapsed = time.perf_counter() - started
    assert manifest["lines"] == len(json.loads(_read(collected["predictions_uri"])))
    return elapsed


def _read(uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    process, url = start_sandbox(args.latency_ms)
    try:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(url)
        from orchard.auto_labeling import predictions

        pooled = predictions.READ_CONCURRENCY
        collected = seed(args.answers)
        timed(collected, pooled)  # warm: imports, the connection's session
        times: dict[int, list[float]] = {1: [], pooled: []}
        for _ in range(args.runs):
            for concurrency in (1, pooled):
                times[concurrency].append(timed(collected, concurrency))
    finally:
        process.terminate()
        process.wait(timeout=30)
    one, many = statistics.median(times[1]), statistics.median(times[pooled])
    print(
        f"build_manifest, {args.answers} answers, +{args.latency_ms} ms per call, {os.cpu_count()} cores, "
        f"median of {args.runs}: one by one {one:.2f} s, {pooled} in flight {many:.2f} s, "
        f"ratio {many / one:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
