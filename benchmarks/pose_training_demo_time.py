"""Wall time of `make demo DAGS=pose_training`: stack up, demo upload → asset-triggered run → report, stack down.

    .venv/bin/python benchmarks/pose_training_demo_time.py [--runs 3]

Runs the demo --runs times (its job environment already built) and reports each run's wall time, the
DAG run's own duration from the demo's table, and the medians.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls, durations = [], []
    for run in range(args.runs):
        started = time.perf_counter()
        done = subprocess.run(
            ["make", "demo", "DAGS=pose_training"], cwd=REPO, capture_output=True, text=True
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"make demo failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        row = re.search(r"^pose_training\s+success\s+(\d+) s", done.stdout, re.MULTILINE)
        durations.append(float(row[1]))
        print(f"run {run + 1}: make demo {walls[-1]:.0f} s, DAG run {durations[-1]:.0f} s")
    print(
        f"\nmedian of {args.runs}: make demo DAGS=pose_training {statistics.median(walls):.0f} s "
        f"(DAG run {statistics.median(durations):.0f} s)"
    )


if __name__ == "__main__":
    main()
