"""Where the sandbox's CPU goes per InvokeEndpointAsync: a CPU-time profile of every sandbox thread.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/async_fanout_profile.py [--frames 600] [--top 25]

async_fanout_limit.py gives the totals (CPU ms per call on each side); this names the functions. The sandbox
runs in this process with every thread it starts (request handlers, the endpoint's staging and answer
threads) under cProfile with a CPU-time clock (time.thread_time), so a thread that sleeps (the 50 ms
latency, waiting on a socket) costs nothing. The client is a separate process (the DAG's hook, 16 in flight)
so its CPU is not in the profile. Printed: CPU ms per call by function, cumulative (what a function and
everything it calls cost) and own time, for the server threads only. The profiler multiplies CPU time
(about 2-3x here): read the shares, and async_fanout_limit.py for the per-call totals.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins", REPO / "benchmarks"):
    sys.path.insert(0, str(path))

IN_FLIGHT = 16
LATENCY_MS = 50

CLIENT = """
import json, sys, time
from orchard.hooks.async_inference import SageMakerAsyncInferenceHook
uris = json.loads(sys.stdin.read())
hook = SageMakerAsyncInferenceHook(aws_conn_id="aws_default", region_name="us-east-1")
started = time.perf_counter()
hook.invoke_many("rate", uris, "image/png", {in_flight})
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""


def run_client(uris: list[str]) -> float:
    """The DAG's hook in its own process, `IN_FLIGHT` calls in flight: seconds for all of `uris`."""
    import json

    client = subprocess.run(
        [sys.executable, "-c", CLIENT.format(in_flight=IN_FLIGHT)],
        input=json.dumps(uris),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}"},
        check=True,
    )
    return json.loads(client.stdout.strip().splitlines()[-1])["seconds"]


_profiles: list[cProfile.Profile] = []
_profiles_lock = threading.Lock()
_profiling = threading.Event()


def profile_every_thread() -> None:
    """Each thread started from now on runs under its own CPU-time profiler while _profiling is set."""
    run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with _profiles_lock:
            _profiles.append(profile)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    import auto_labeling_throughput as bench
    import boto3
    from PIL import Image

    from local_aws import aws_connection, client_env
    from local_aws.server import Sandbox
    from local_aws.stack import pick_port

    os.environ["ORCHARD_SANDBOX_LATENCY_MS"] = str(LATENCY_MS)
    profile_every_thread()
    sandbox = Sandbox(port=pick_port(0)).start()
    os.environ.update(client_env(sandbox.url))
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_connection(sandbox.url)
    boto3.client("s3").create_bucket(Bucket=bench.BUCKET)
    bench.create_bench_role(boto3.client("iam"))
    bench.deploy_detector("rate")
    tiny = io.BytesIO()
    Image.new("RGB", (64, 128), (120, 120, 120)).save(tiny, "PNG")
    uris = bench.upload([(f"tiny/{i:05d}.png", tiny.getvalue()) for i in range(args.frames)])
    run_client(uris[:50])  # warm-up: moto loads each service model once per process, on first use
    with _profiles_lock:
        started_with = len(_profiles)  # threads from now on: the measured calls' request handlers
    process_cpu = time.process_time()
    seconds = run_client(uris)
    time.sleep(2)  # the endpoint's staging and answers of the last calls
    calls = args.frames
    server_ms = (time.process_time() - process_cpu) / calls * 1000
    sandbox.stop()
    stats = None
    with _profiles_lock:
        for profile in _profiles[started_with:]:
            stats = pstats.Stats(profile) if stats is None else stats.add(profile)
    print(
        f"{args.frames} calls at {args.frames / seconds:.0f}/s ({IN_FLIGHT} in flight, {LATENCY_MS} ms); "
        f"sandbox process CPU {server_ms:.2f} ms per call, profiler included (all threads, the endpoint's "
        "staging too; below: the request threads only); "
        f"load {os.getloadavg()[0]:.2f}\n"
    )
    if stats is None:
        return
    for order, title in (("cumulative", "cumulative"), ("tottime", "own time")):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(order).print_stats(args.top)
        print(f"--- {title}, CPU seconds over {calls} calls ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-8000:])


if __name__ == "__main__":
    main()
