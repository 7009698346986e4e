"""Seconds from a deferred task's trigger event to the task's end, read from a local stack's Airflow home
(issue 17.1: `end_in_trigger`, orchard.triggers.task_end).

    .venv/bin/python benchmarks/deferred_task_finish.py HOME [HOME ...] [--json out.json]

HOME is the Airflow home of a finished `make demo` / `benchmarks/airflow_overhead.py` stack (`.airflow` in
the checkout that ran it; copy it away before the next run starts a fresh one). For each task instance
with a trigger log: when its trigger fired its last event (the triggerer's "Trigger fired event" line),
its end_date in the metadata DB, the difference ("finish s": the resume on a worker — queueing, a process
start, the DAG file's parse, execute_complete — or nothing when the trigger ended the task), and whether
the trigger ended it ("the task ends here"). A trigger that ends the task describes the job and pushes its
XComs *before* its event, so "finish s" alone flatters it: "since last poll s" counts from the trigger's
last poll that still saw the job running (the provider's "not done yet" / orchard's "is RUNNING (poll"
line), which both ways include the same one poll delay. Prints one row per task instance and the medians
per HOME.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
from pathlib import Path

FIRED, ENDED_HERE = "Trigger fired event", "the task ends here"
# SageMaker waiter's line, BatchJobWaitTrigger's line, the provider's EMR triggers' status messages (steps,
# cluster start-up: EmrAddStepsTrigger / EmrCreateJobFlowTrigger)
STILL_RUNNING = (
    "not done yet",
    "(poll ",
    "Steps are still in non-terminal state",
    "JobFlow creation in progress",
)


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def trigger_log_facts(path: Path) -> tuple[dt.datetime | None, dt.datetime | None, bool]:
    """(when the trigger fired its last event, its last poll that saw the job running, whether it ended
    the task itself)."""
    fired, polled, ended_here = None, None, False
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event = str(record.get("event", ""))
        if event == FIRED:
            fired = _utc(record["timestamp"])
        elif any(mark in event for mark in STILL_RUNNING):
            polled = _utc(record["timestamp"])
        ended_here = ended_here or event.startswith(ENDED_HERE)
    return fired, polled, ended_here


def finishes(home: Path) -> list[dict]:
    """One row per finished task instance whose latest attempt has a trigger log."""
    db = sqlite3.connect(f"file:{home / 'demo.db'}?mode=ro", uri=True, timeout=30)
    rows = db.execute(
        "select dag_id, run_id, task_id, map_index, try_number, state, end_date from task_instance "
        "where end_date is not null"
    ).fetchall()
    found = []
    for dag_id, run_id, task_id, map_index, try_number, state, end_date in rows:
        folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        logs = sorted(folder.glob(f"attempt={try_number}.log.trigger.*.log"))
        if not logs:
            continue
        fired, polled, ended_here = trigger_log_facts(logs[-1])
        if fired is None:
            continue
        ended = _utc(end_date)
        found.append(
            {
                "dag_id": dag_id,
                "task": f"{task_id}[{map_index}]" if map_index >= 0 else task_id,
                "state": state,
                "ended_in_trigger": ended_here,
                "finish_s": round((ended - fired).total_seconds(), 2),
                "since_last_poll_s": round((ended - polled).total_seconds(), 2) if polled else None,
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("homes", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = {}
    for home in args.homes:
        rows = finishes(home)
        report[str(home)] = rows
        print(f"{home}")
        for row in rows:
            how = "ended by its trigger" if row["ended_in_trigger"] else "resumed on a worker"
            since = row["since_last_poll_s"]
            print(
                f"  {row['dag_id']:20} {row['task']:20} {row['state']:8} finish {row['finish_s']:6.2f} s  "
                f"since last poll {since if since is not None else '-':>6} s  {how}"
            )
        polled = [r["since_last_poll_s"] for r in rows if r["since_last_poll_s"] is not None]
        if rows:
            print(
                f"  median finish s {statistics.median(r['finish_s'] for r in rows):.2f}, since last poll s "
                f"{statistics.median(polled) if polled else float('nan'):.2f} ({len(rows)} tasks)"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
