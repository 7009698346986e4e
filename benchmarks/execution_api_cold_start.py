"""The api-server's first Task Execution API request vs its second (issue 17 item 1).

    .venv/bin/python benchmarks/execution_api_cold_start.py [--rounds 3]

Each round starts a fresh local stack (sandbox + Airflow, free ports, a scratch home) WITHOUT the stack's own
warm-up request (Stack.warm_execution_api), then times `GET /execution/health` twice. The first pays the
execution API's cold start, which a run's first task paid in its `run` call before the stack made that
request itself. Prints each round and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from local_aws.stack import pick_port
from local_aws.stack.processes import Stack


class ColdStack(Stack):
    def warm_execution_api(self) -> None:  # leave the first request to the benchmark
        pass


def health_seconds(api_url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{api_url}/execution/health", timeout=300) as response:
        response.read()
    return time.monotonic() - started


def one_round() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        stack = ColdStack(home=Path(home), fresh_db=True, sandbox_port=pick_port(0), api_port=pick_port(0))
        with stack:
            stack.start()
            return health_seconds(stack.api_url), health_seconds(stack.api_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    firsts, seconds = [], []
    for number in range(1, args.rounds + 1):
        first, second = one_round()
        firsts.append(first)
        seconds.append(second)
        load = open("/proc/loadavg").read().split()[0]
        print(f"round {number}: first {first:.2f} s, second {second:.3f} s (load {load})", flush=True)
    print(
        f"median of {args.rounds}: first {statistics.median(firsts):.2f} s, "
        f"second {statistics.median(seconds):.3f} s"
    )


if __name__ == "__main__":
    main()
