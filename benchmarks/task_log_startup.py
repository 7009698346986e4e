"""Where a task process's start goes, read from the task logs of the stack's runs (issue 17.1).

    .venv/bin/python benchmarks/task_log_startup.py [.airflow/logs ...] [--since 2026-12-07T06:00]

Each task log (``dag_id=*/run_id=*/task_id=*/attempt=*.log``, Airflow 3's JSON lines) of the runs found
under the logs folders (default: .airflow/logs of this checkout) gives:

* wait: the first line ("::group::Pre Execute", written as soon as the forked task process runs) to
  "DAG bundles loaded": the supervisor's start call to the execution API and its StartupDetails;
* parse: ``dag_file_parse_ms`` of "Worker startup parse complete" (task_runner.parse: the DAG file's
  imports and top-level code, in this task process);
* pre: that line to "::endgroup::" (the rest of startup before the operator's execute);
* session: the first "Found credentials in environment variables" to the next "Found endpoint for ..."
  (botocore): a task's first AWS session up to its first client's endpoint, where the JSON that the
  forkserver's warm-up loads was parsed (docs/sandbox.md §25); only tasks that make an AWS client;

printed per DAG run as medians over its task attempts, with the count. The parse column is what a worker
that already imported the DAG files' modules saves (benchmarks/task_start_time.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST, BUNDLES, PARSED, END = (
    "::group::Pre Execute",
    "DAG bundles loaded",
    "Worker startup parse complete",
    "::endgroup::",
)
CREDENTIALS, ENDPOINT = "Found credentials in environment variables", "Found endpoint for"


def _events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _time(event: dict) -> float:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def attempt_figures(path: Path) -> dict[str, float] | None:
    """wait, parse, pre and session seconds of one task attempt (session None without an AWS client), or
    None when its log has no full startup."""
    found: dict[str, dict] = {}
    for event in _events(path):
        name = str(event.get("event", ""))
        if name.startswith(CREDENTIALS) and CREDENTIALS not in found:
            found[CREDENTIALS] = event
        if name.startswith(ENDPOINT) and CREDENTIALS in found and ENDPOINT not in found:
            found[ENDPOINT] = event
        for marker in (FIRST, PARSED, END):
            if name == marker and marker not in found:
                found[marker] = event
        if name.startswith(BUNDLES) and BUNDLES not in found:
            found[BUNDLES] = event
    if not all(marker in found for marker in (FIRST, BUNDLES, PARSED, END)):
        return None
    return {
        "wait": _time(found[BUNDLES]) - _time(found[FIRST]),
        "parse": found[PARSED].get("dag_file_parse_ms", 0) / 1000,
        "pre": _time(found[END]) - _time(found[PARSED]),
        "session": _time(found[ENDPOINT]) - _time(found[CREDENTIALS]) if ENDPOINT in found else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[REPO / ".airflow" / "logs"])
    parser.add_argument("--since", help="only runs whose run_id's timestamp is at or after this (ISO)")
    args = parser.parse_args()
    since = args.since.replace("-", "").replace(":", "") if args.since else ""
    print(f"{'logs / DAG run':70} {'tasks':>5} {'wait s':>7} {'parse s':>7} {'pre s':>6} {'session s':>9}")
    for folder in args.folders:
        for run_dir in sorted(folder.glob("dag_id=*/run_id=*")):
            if since and run_dir.name.split("__")[-1] < since:
                continue
            rows = [f for f in map(attempt_figures, sorted(run_dir.glob("task_id=*/**/attempt=*.log"))) if f]
            if not rows:
                continue
            medians = {k: statistics.median(r[k] for r in rows) for k in ("wait", "parse", "pre")}
            sessions = [r["session"] for r in rows if r["session"] is not None]
            session = f"{statistics.median(sessions):9.2f}" if sessions else f"{'-':>9}"
            name = f"{folder}/{run_dir.parent.name}/{run_dir.name}"[-70:]
            print(
                f"{name:70} {len(rows):5d} {medians['wait']:7.2f} {medians['parse']:7.2f} {medians['pre']:6.2f}"
                f" {session}"
            )


if __name__ == "__main__":
    main()
