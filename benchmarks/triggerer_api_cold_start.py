"""The triggerer's first request to its in-process Task Execution API vs its second (issue 17.1).

    .venv/bin/python benchmarks/triggerer_api_cold_start.py [--rounds 3]

Airflow 3.3's triggerer answers its triggers' requests (XComs, a run's state, ...) in its supervisor's loop,
through an execution API app it builds in its own process on the first request
(`TriggerRunnerSupervisor.client` -> `in_process_api_server()`); while it builds, that loop starts no new
trigger and handles no event. Each round runs a fresh Python process that, as the supervisor does, imports
the triggerer, then times: importing the API app's module, building the client (app + lifespan), the first
request (`GetDagRunState`, the one `orchard.triggers.task_end.warm_the_supervisors_api` makes) and a second.
A scratch Airflow home with a migrated SQLite DB, made once. Prints each round and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("import_app", "client", "first_request", "second_request")

CHILD = """
import json, time
import airflow.jobs.triggerer_job_runner as runner  # the triggerer has it loaded before any trigger
from airflow.sdk.execution_time.comms import GetDagRunState
from airflow.sdk.execution_time.request_handlers import handle_get_dag_run_state

marks = [time.monotonic()]
import airflow.api_fastapi.execution_api.app  # noqa: F401
marks.append(time.monotonic())
client = runner.TriggerRunnerSupervisor.make_client(None)
marks.append(time.monotonic())
for _ in range(2):
    try:
        handle_get_dag_run_state(client, GetDagRunState(dag_id="no_such_dag", run_id="no_such_run"))
    except Exception:  # an unknown run: the answer does not matter, its time does
        pass
    marks.append(time.monotonic())
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""


def one_round(env: dict[str, str]) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True, timeout=600
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(home) / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, check=True
        )
        rounds = []
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            seconds = one_round(env)
            rounds.append(seconds)
            load = Path("/proc/loadavg").read_text().split()[0]
            shown = ", ".join(f"{step} {s:.2f} s" for step, s in zip(STEPS, seconds))
            print(
                f"round {number}: {shown} (process {time.monotonic() - started:.1f} s, load {load})",
                flush=True,
            )
    medians = ", ".join(
        f"{step} {statistics.median(r[i] for r in rounds):.2f} s" for i, step in enumerate(STEPS)
    )
    print(f"median of {args.rounds}: {medians}")


if __name__ == "__main__":
    main()
