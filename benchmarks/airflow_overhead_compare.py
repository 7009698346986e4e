"""Medians of several `airflow_overhead.py --json` runs of two checkouts, and their ratio (issue 17.1).

    .venv/bin/python benchmarks/airflow_overhead_compare.py --after a1.json a2.json --before b1.json b2.json

Run the two checkouts alternately in one time window (after, before, after, before, ...: the machine's load
drifts), each writing its own JSON; this prints per DAG the median wall, seconds outside jobs (wall - jobs:
the job seconds drift with the load too, so overhead % alone can mislead), overhead, "AWS s" (the seconds AWS
held the run's jobs and resources, their queueing and provisioning included) and "Airflow %"
((wall - AWS s) / wall), "task s" (a task running, no job) and "sched s" (nothing running, no job) of each
side, the runs' count, and after / before. Only successful runs count (a failed run ends early and would
flatter its side). A JSON written before "AWS s" existed shows "-" there.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

FIGURES = ("wall_s", "outside_s", "overhead", "aws_s", "airflow_share", "task_s", "sched_s")
RATIOS = ("wall_s", "outside_s", "overhead", "airflow_share", "task_s")


def medians(paths: list[Path]) -> dict[str, dict[str, float | None]]:
    """{dag_id: {figure: median over the successful runs that have it (None: none has), "runs": n}}."""
    runs: dict[str, list[dict]] = {}
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            if run["state"] == "success":  # outside_s: the run's seconds outside its jobs (wall - jobs)
                runs.setdefault(run["dag_id"], []).append({**run, "outside_s": run["wall_s"] - run["job_s"]})
    return {
        dag_id: {"runs": len(rows), **{f: median_of(rows, f) for f in FIGURES}}
        for dag_id, rows in runs.items()
    }


def median_of(rows: list[dict], figure: str) -> float | None:
    values = [r[figure] for r in rows if r.get(figure) is not None]
    return statistics.median(values) if values else None


def cell(side: dict) -> str:
    def fmt(figure: str, spec: str) -> str:
        value = side[figure]
        return f"{'-':>6}" if value is None else f"{value:6{spec}}"

    return " ".join(
        [
            fmt("wall_s", ".0f"),
            fmt("outside_s", ".0f"),
            fmt("overhead", ".0%"),
            fmt("aws_s", ".0f"),
            fmt("airflow_share", ".0%"),
            fmt("task_s", ".0f"),
            fmt("sched_s", ".0f"),
            f"{side['runs']:3.0f}",
        ]
    )


def ratio(after: float | None, before: float | None) -> str:
    return f"{after / before:.2f}" if after is not None and before else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", nargs="+", type=Path, required=True)
    parser.add_argument("--before", nargs="+", type=Path, required=True)
    args = parser.parse_args()
    after, before = medians(args.after), medians(args.before)
    columns = f"{'wall s':>6} {'out s':>6} {'ovh':>6} {'AWS s':>6} {'Airfl%':>6} {'task s':>6} {'sched':>6} {'n':>3}"
    print(
        f"{'DAG':20} | before: {columns} | after: {columns} | "
        "after/before: wall, outside s, overhead, Airflow %, task s"
    )
    for dag_id in sorted(set(after) & set(before)):
        a, b = after[dag_id], before[dag_id]
        ratios = ", ".join(ratio(a[f], b[f]) for f in RATIOS)
        print(f"{dag_id:20} | before: {cell(b)} | after: {cell(a)} | {ratios}")


if __name__ == "__main__":
    main()
