"""Medians of several `airflow_overhead.py --json` runs of two checkouts, and their ratio (issue 17.1).

    .venv/bin/python benchmarks/airflow_overhead_compare.py --after a1.json a2.json --before b1.json b2.json

Run the two checkouts alternately in one time window (after, before, after, before, ...: the machine's load
drifts), each writing its own JSON; this prints per DAG the median wall, seconds outside jobs (wall - jobs:
the job seconds drift with the load too, so overhead % alone can mislead), overhead, "task s" (a task
running, no job) and "sched s" (nothing running, no job) of each side, the runs' count, and after / before.
Only successful runs count (a failed run ends early and would flatter its side).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

FIGURES = ("wall_s", "outside_s", "overhead", "task_s", "sched_s")


def medians(paths: list[Path]) -> dict[str, dict[str, float]]:
    """{dag_id: {figure: median over the successful runs, "runs": n}}."""
    runs: dict[str, list[dict]] = {}
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            if run["state"] == "success":  # outside_s: the run's seconds outside its jobs (wall - jobs)
                runs.setdefault(run["dag_id"], []).append({**run, "outside_s": run["wall_s"] - run["job_s"]})
    return {
        dag_id: {"runs": len(rows), **{f: statistics.median(r[f] for r in rows) for f in FIGURES}}
        for dag_id, rows in runs.items()
    }


def cell(side: dict[str, float]) -> str:
    return (
        f"{side['wall_s']:6.0f} {side['outside_s']:6.0f} {side['overhead']:6.0%} {side['task_s']:6.0f} {side['sched_s']:6.0f} "
        f"{side['runs']:3.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", nargs="+", type=Path, required=True)
    parser.add_argument("--before", nargs="+", type=Path, required=True)
    args = parser.parse_args()
    after, before = medians(args.after), medians(args.before)
    columns = f"{'wall s':>6} {'out s':>6} {'ovh':>6} {'task s':>6} {'sched':>6} {'n':>3}"
    print(
        f"{'DAG':20} | before: {columns} | after: {columns} | after/before: wall, outside s, overhead, task s"
    )
    for dag_id in sorted(set(after) & set(before)):
        a, b = after[dag_id], before[dag_id]
        ratios = ", ".join(
            f"{a[f] / b[f]:.2f}" if b[f] else "-" for f in ("wall_s", "outside_s", "overhead", "task_s")
        )
        print(f"{dag_id:20} | before: {cell(b)} | after: {cell(a)} | {ratios}")


if __name__ == "__main__":
    main()
