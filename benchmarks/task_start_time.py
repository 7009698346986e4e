"""What a LocalExecutor task process pays before its operator runs, with the stack's start method (issue 17.1).

    .venv/bin/python benchmarks/task_start_time.py [--rounds 5] [--tasks 4] [dags/edge_deployment.py ...]

Airflow 3's LocalExecutor hands each task to a long-lived worker process, which forks the task process
(airflow.sdk.execution_time.supervisor); the task process then imports what its DAG file needs and parses
the file (task_runner.parse) before the operator's execute. Whatever the worker has already imported, the
task inherits. This script builds that chain with Airflow's own code under two settings:

* before: `[scheduler] mp_start_method = fork` (Python 3.11's default on Linux): the worker is forked
  from a process holding the scheduler's imports, which do not include the DAG files' providers or boto3;
* after: the local stack's settings (local_aws/stack/environment.py STACK_TUNING): `forkserver` with
  `[scheduler] mp_forkserver_preload`, so the worker starts with those modules imported.

In each round and setting, a fresh "scheduler" process (the scheduler's imports, then
`set_component_mp_start_method("scheduler")` and the plugins loaded, as `airflow scheduler` does) starts one worker the way the
LocalExecutor does (multiprocessing.Process), and the worker forks --tasks task processes per DAG file,
one after the other. Each task process does what task_runner does before the operator: imports
task_runner, loads the plugins (its listener manager), parses its DAG file with BundleDagBag and looks
its task up. It reports the seconds from the
fork to its task being ready, and to the modules a report task imports in its execute (orchard.reports:
matplotlib, numpy) being imported too. Settings alternate within each round (the machine's load
drifts); the table gives per file the median over rounds of each setting's median, and after / before.
The first task of each worker is reported apart (it also pays the worker's own lazy imports).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

# what orchard.reports imports when a report task renders its figures
REPORT_IMPORTS = ("numpy", "matplotlib.figure", "matplotlib.backends.backend_agg")
BEFORE_ENV = {"AIRFLOW__SCHEDULER__MP_START_METHOD": "fork", "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ""}


def _task_process(dag_file: str, bundle_path: str, write_fd: int, started: float) -> None:
    """What a task process does before its operator's execute (task_runner.main → parse), then what a
    report task imports in its execute (orchard.reports: matplotlib, numpy)."""
    import airflow.sdk.execution_time.task_runner  # noqa: F401  (supervisor's _subprocess_main imports it)
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager()  # task_runner.startup: loads the plugins folder's plugins (orchard_ui)

    bag = BundleDagBag(
        dag_folder=dag_file,
        safe_mode=False,
        load_op_links=False,
        bundle_path=bundle_path,
        bundle_name="dags-folder",
    )
    dag = next(iter(bag.dags.values()))
    dag.task_dict[next(iter(dag.task_dict))]  # the task the runner would look up
    ready = time.perf_counter() - started
    for name in REPORT_IMPORTS:
        importlib.import_module(name)
    os.write(write_fd, f"{ready} {time.perf_counter() - started}\n".encode())


def _worker(dag_files: list[str], bundle_path: str, tasks: int, results: multiprocessing.Queue) -> None:
    """A LocalExecutor worker: supervise_task's module is imported here, each task is an os.fork."""
    import airflow.sdk.execution_time.supervisor  # noqa: F401  (BaseExecutor.run_workload imports it)

    timings: dict[str, list[list[float]]] = {}
    for dag_file in dag_files:
        for _ in range(tasks):
            read_fd, write_fd = os.pipe()
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                try:
                    _task_process(dag_file, bundle_path, write_fd, started)
                finally:
                    os._exit(0)
            os.close(write_fd)
            with os.fdopen(read_fd) as reader:
                line = reader.read().strip()
            os.waitpid(pid, 0)
            timings.setdefault(dag_file, []).append(
                [float(x) for x in line.split()] if line else [math.nan] * 2
            )
    results.put(timings)


def scheduler_side(dag_files: list[str], tasks: int) -> dict[str, list[float]]:
    """One setting's run: the scheduler's imports, its start method, one worker, its task processes."""
    import airflow.executors.local_executor  # noqa: F401
    import airflow.jobs.scheduler_job_runner  # noqa: F401
    from airflow.listeners.listener import get_listener_manager
    from airflow.utils.process_utils import set_component_mp_start_method

    set_component_mp_start_method("scheduler")
    get_listener_manager()  # the scheduler's Job loads the plugins before its executor starts workers
    results: multiprocessing.Queue = multiprocessing.Queue()
    worker = multiprocessing.Process(
        target=_worker, args=(dag_files, str(REPO / "dags"), tasks, results), daemon=True
    )
    worker.start()
    timings = results.get(timeout=900)
    worker.join()
    return timings


def run_setting(env_overrides: dict[str, str], dag_files: list[str], tasks: int, home: Path) -> dict:
    from local_aws.stack.environment import airflow_env

    env = airflow_env(home, REPO / "dags", db_path=home / "bench.db")
    env.update(env_overrides)
    env["ORCHARD_PARAM_DEFAULTS"] = ""
    out = subprocess.run(
        [sys.executable, __file__, "--side", *dag_files, "--tasks", str(tasks)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1200,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=4, help="task processes per DAG file and worker")
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = [str(f.resolve()) for f in args.files] or sorted(str(p) for p in (REPO / "dags").glob("*.py"))
    if args.side:
        print(json.dumps(scheduler_side(files, args.tasks)))
        return

    from local_aws.stack.environment import STACK_TUNING

    after_env = {k: v for k, v in STACK_TUNING.items() if "MP_" in k}
    settings = {"before": BEFORE_ENV, "after": after_env}
    print(f"after: {after_env}")
    print(f"load average at start: {os.getloadavg()}")
    # per setting, row name → medians per round of [task ready, + report imports]
    rows: dict[str, dict[str, list[list[float]]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, overrides in settings.items():
                timings = run_setting(overrides, files, args.tasks, Path(tmp))
                for i, (dag_file, tasks) in enumerate(timings.items()):
                    if i == 0:
                        rows[name].setdefault("first task of a worker", []).append(tasks[0])
                        tasks = tasks[1:]
                    per_round = [statistics.median(t[k] for t in tasks) for k in (0, 1)]
                    rows[name].setdefault(Path(dag_file).name, []).append(per_round)
    print(f"load average at end: {os.getloadavg()}")
    print(
        f"{'seconds from the fork (median of rounds)':40} | {'task ready: before':>18} {'after':>6} {'ratio':>6} "
        f"| {'+ report imports: before':>24} {'after':>6} {'ratio':>6}"
    )
    for row in rows["before"]:
        cells = []
        for k in (0, 1):
            b = statistics.median(r[k] for r in rows["before"][row])
            a = statistics.median(r[k] for r in rows["after"][row])
            cells.append(f"{b:{18 if k == 0 else 24}.2f} {a:6.2f} {a / b:6.2f}")
        print(f"{row:40} | {cells[0]} | {cells[1]}")


if __name__ == "__main__":
    main()
