"""One client process with 16 calls in flight against two with 8 each, against the do-nothing responder.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/async_fanout_processes.py [--runs 4] [--frames 600]

Whether splitting the fan-out's client over processes (two GILs) gets closer to the in-flight/latency limit
(16 / 50 ms = 320/s) than one process with 16 threads. The server is async_fanout_limit.py's responder (no
server work); each client process starts, builds its hook and warms up before the clock starts; the two
layouts alternate within each run. Printed: per run the rates, then medians as a ratio to the limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins", REPO / "benchmarks"):
    sys.path.insert(0, str(path))

CHILD = """
import sys
from orchard.hooks.async_inference import SageMakerAsyncInferenceHook
n, in_flight = int(sys.argv[1]), int(sys.argv[2])
hook = SageMakerAsyncInferenceHook(aws_conn_id="aws_responder", region_name="us-east-1")
uris = [f"s3://responder/{i}.png" for i in range(n)]
hook.invoke_many("rate", uris[:20], "image/png", in_flight)
print("ready", flush=True)
sys.stdin.readline()
refused = [r for r in hook.invoke_many("rate", uris, "image/png", in_flight) if "error" in r]
print("refused" if refused else "done", flush=True)
"""


def wait_for(process: subprocess.Popen, word: str) -> None:
    assert process.stdout is not None
    while line := process.stdout.readline():
        if line.strip() == word:
            return
        if line.strip() == "refused":
            raise RuntimeError("the responder refused calls")
    raise RuntimeError(f"a client process ended before {word!r}")


def rate(processes: int, in_flight: int, frames: int) -> float:
    """Calls/s of `processes` clients together, each with `in_flight` calls in flight."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}"}
    command = [sys.executable, "-c", CHILD, str(frames // processes), str(in_flight)]
    clients = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(processes)
    ]
    for client in clients:
        wait_for(client, "ready")
    started = time.perf_counter()
    for client in clients:
        assert client.stdin is not None
        client.stdin.write("go\n")
        client.stdin.flush()
    for client in clients:
        wait_for(client, "done")
    seconds = time.perf_counter() - started
    for client in clients:
        client.wait()
    return frames / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()

    import async_fanout_limit

    from local_aws import aws_connection, client_env

    responder, url = async_fanout_limit.start_responder(async_fanout_limit.LATENCY_MS)
    os.environ.update(client_env(url))
    os.environ["AIRFLOW_CONN_AWS_RESPONDER"] = aws_connection(url)
    layouts = {"1 process x 16": (1, 16), "2 processes x 8": (2, 8)}
    limit = 16 / (async_fanout_limit.LATENCY_MS / 1000)
    samples: dict[str, list[float]] = {name: [] for name in layouts}
    try:
        for run in range(args.runs):
            for name in list(layouts) if run % 2 == 0 else list(reversed(layouts)):
                samples[name].append(rate(*layouts[name], args.frames))
            print(
                f"  run {run + 1}: "
                + "; ".join(f"{name} {values[-1]:.0f}/s" for name, values in samples.items())
                + f"; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        responder.terminate()
        responder.wait()
    print(f"\nmedian of {args.runs} runs, limit {limit:.0f}/s, load {os.getloadavg()[0]:.2f}")
    for name, values in samples.items():
        print(
            f"  {name}: {statistics.median(values):.0f}/s = {statistics.median(values) / limit:.2f} x limit"
        )


if __name__ == "__main__":
    main()
