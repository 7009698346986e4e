"""Wall time of one call at a time against the sandbox with 50 ms latency: InvokeEndpointAsync (a response
with a body) next to S3 HeadObject (no body), median of `--calls` sequential calls each.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/sandbox_call_latency.py [--calls 40]

A call should take the injected 50 ms plus a few ms of work. This is how the ~40 ms that Nagle's algorithm
and the client's delayed ACK added to every answer with a body on a kept-alive connection showed up
(local_aws/keepalive.py sets TCP_NODELAY): InvokeEndpointAsync took ~96 ms while HeadObject took ~54 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins", REPO / "benchmarks"):
    sys.path.insert(0, str(path))

LATENCY_MS = 50


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()

    import auto_labeling_throughput as bench
    import boto3
    from PIL import Image

    sandbox = bench.start_sandbox(LATENCY_MS)
    try:
        bench.deploy_detector("rate")
        tiny = io.BytesIO()
        Image.new("RGB", (64, 128)).save(tiny, "PNG")
        uris = bench.upload([(f"tiny/{i:05d}.png", tiny.getvalue()) for i in range(args.calls)])
        runtime, s3 = boto3.client("sagemaker-runtime"), boto3.client("s3")
        calls = {
            "InvokeEndpointAsync": lambda uri: runtime.invoke_endpoint_async(
                EndpointName="rate", InputLocation=uri, ContentType="image/png"
            ),
            "HeadObject": lambda uri: s3.head_object(Bucket=bench.BUCKET, Key=uri.split("/", 3)[3]),
        }
        for name, call in calls.items():
            times = []
            for uri in uris:
                started = time.perf_counter()
                call(uri)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{name}: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms")
    finally:
        sandbox.terminate()
        sandbox.wait()
    print(f"{args.calls} sequential calls each, {LATENCY_MS} ms latency, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
