"""Airflow's LocalExecutor, with its workers started by the scheduler's start, not by the first task.

Under `[scheduler] mp_start_method = fork` (Python 3.11's default) LocalExecutor.start() forks all
`parallelism` workers at once. Under `forkserver`, which the local stack uses so that tasks inherit the
modules in `mp_forkserver_preload` (local_aws/stack/environment.py), Airflow 3.3 starts a worker only when a
task waits for one, so the first task after each scheduler start also waits for the forkserver itself to
start and import its preload list: the Task SDK, the Amazon provider, boto3, matplotlib and the warmed
botocore loader (orchard.aws_preload), 3-7 s on an idle machine and 20-45 s on the loaded 2 cores
(benchmarks/airflow_overhead.py's critical path: the first task's queued -> start). In `make demo` that is
on every pipeline's path, since all five start together. Here the workers start with the executor, as
under `fork`, and the scheduler's first loop comes after the forkserver is ready.

Set as `[core] executor = orchard.local_executor.WarmStartLocalExecutor` (a module path is one of the
executor forms Airflow's "Executor" docs list). It only changes when workers start: a worker still runs its
tasks exactly as LocalExecutor's do.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor


class WarmStartLocalExecutor(LocalExecutor):
    """LocalExecutor whose `parallelism` workers start in start() whatever the start method."""

    def start(self) -> None:
        super().start()
        if not self.is_mp_using_fork:  # under fork, LocalExecutor.start() has just started them all
            for _ in range(self.parallelism - len(self.workers)):
                self._spawn_worker()  # LocalExecutor's own (Airflow 3.3): one worker process per call
