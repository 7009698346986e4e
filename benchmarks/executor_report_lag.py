"""How late a task process's end reaches the scheduler, and which resumed tasks that failed, read from a local
stack's Airflow home (docs/architecture.md, "A deferred task resumed within seconds").

    .venv/bin/python benchmarks/executor_report_lag.py [HOME ...] [--json out.json]

HOME is the Airflow home of a finished `make demo` / `python -m local_aws demo` / benchmarks/airflow_overhead.py
stack (default: `.airflow`, the last one this checkout ran). From its scheduler log (logs/stack/scheduler.log, which the
LocalExecutor's workers and their task processes write to as well), per workload of a task (one process: a
run up to `defer()`, a resumed run, a plain run):

* lag: the task process's last log line → the scheduler's "Received executor event" for that try, taken in
  order, so a deferred task's two workloads are paired with its two events;
* mismatches: the scheduler's "finished with state success, but the task instance's state attribute is
  running" lines (apache/airflow#72716: the late report of a deferred task's first process, read while its
  resumed process runs, fails the try).

Prints, per HOME, the workloads, the median lag, how many reported 4 s or more after their process's end, and
the tasks the scheduler failed that way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
from collections import defaultdict, deque
from pathlib import Path

TASK_LINE = re.compile(
    r"^(\S+ \S+) .*\[task\] .*dag_id=(\S+) .*map_index=(-?\d+) .*task_id=(\S+) .*try_number=(\d+)"
)
EVENT = re.compile(
    r"^(\S+) .*Received executor event with state \w+ for task instance TaskInstanceKey\(dag_id='([^']+)', "
    r"task_id='([^']+)', run_id='[^']+', try_number=(\d+), map_index=(-?\d+)\)"
)
WORKLOAD_START = "Worker startup parse complete"
MISMATCH = re.compile(r"reported that the task instance <TaskInstance: (\S+) .*state attribute is running")
LATE_S = 4.0


def _epoch(text: str) -> float:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def report_lags(log: Path) -> dict:
    """The lag of every workload whose end and report both appear in `log`, and the mismatched tasks."""
    workloads: dict[tuple, deque] = defaultdict(deque)  # key → [last line time] per workload, in order
    lags, mismatched = [], []
    for line in log.read_text(errors="replace").splitlines():
        if task := TASK_LINE.match(line):
            when, dag_id, map_index, task_id, try_number = task.groups()
            key = (dag_id, task_id, try_number, map_index)
            if WORKLOAD_START in line or not workloads[key]:
                workloads[key].append(_epoch(when))  # a new process of that try
            workloads[key][-1] = _epoch(when)
        elif event := EVENT.match(line):
            when, dag_id, task_id, try_number, map_index = event.groups()
            ends = workloads.get((dag_id, task_id, try_number, map_index))
            if ends:
                lags.append(_epoch(when) - ends.popleft())
        elif mismatch := MISMATCH.search(line):
            mismatched.append(mismatch.group(1))
    return {
        "workloads": len(lags),
        "median_lag_s": statistics.median(lags) if lags else None,
        "late": sum(lag >= LATE_S for lag in lags),
        "mismatched": mismatched,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("homes", nargs="*", type=Path, default=[Path(".airflow")])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    found = {str(home): report_lags(home / "logs" / "stack" / "scheduler.log") for home in args.homes}
    for home, row in found.items():
        lag = "-" if row["median_lag_s"] is None else f"{row['median_lag_s']:.2f} s"
        print(
            f"{home}: {row['workloads']} workloads, median lag {lag}, {row['late']} reported ≥{LATE_S:.0f} s "
            f"late; failed as a late report: {', '.join(row['mismatched']) or 'none'}"
        )
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
