"""A CPU-bound process for `--seconds` (default 600): the "other work on the machine" of issue 17.2.

    .venv/bin/python benchmarks/_cpu_load.py [--seconds 600] [--processes 2]

With --processes N it starts N busy processes (one per core loads the machine fully) and waits for them;
airflow_overhead.py --load N starts N of these for a demo under load. It only spins: no memory, no disk.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time


def spin(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        for _ in range(100_000):
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    if args.processes <= 1:
        spin(args.seconds)
        return
    workers = [multiprocessing.Process(target=spin, args=(args.seconds,)) for _ in range(args.processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
