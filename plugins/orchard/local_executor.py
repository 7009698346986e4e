"""Airflow's LocalExecutor, knowing a task as its own until every process it started for it has reported.

Why (Airflow 3.3.2; apache/airflow#72716 and #71580, fixes #71579 / #72767 not merged yet): a deferrable task
runs twice under the same key (same try number): once up to `defer()`, once resumed. The first process's
exit comes back to the scheduler as SUCCESS, often seconds late: the task's supervisor notices its child's
exit after a `select` that can wait up to `[workers] min_heartbeat_interval` (5 s). When the trigger fires in
those seconds, the resumed task is already RUNNING when the scheduler reads that stale SUCCESS.
`SchedulerJobRunner.process_executor_events` then asks `executor.has_task(ti)` and, with the stock executor,
hears no: Airflow 3.3's LocalExecutor never adds a started workload to `running`. The scheduler logs "finished
with state success, but the task instance's state attribute is running", marks the try UP_FOR_RETRY (a new
task instance id), the resumed process's success call is refused with 404 "Task Instance not found", and the
task reruns after its retry delay. In the demo this cost auto_labeling's `label` 60 s; without retries the
run fails.

This executor counts the workloads it has handed to its workers and not yet heard back from, per key;
`has_task` is true while one is outstanding, which is what the scheduler's check means ("this scheduler has
this task already"). A task killed outside Airflow still reads as such: its last process reports, the count
falls to 0, and the scheduler's mismatch handling runs as before.

Used by the local stack and docker-compose's LocalExecutor (`[core] executor`). Remove it once Airflow's
scheduler ignores a stale defer-exit event for a RUNNING task (the PRs above).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow.executors.local_executor import LocalExecutor as AirflowLocalExecutor

# What a worker reports when a workload's process is done (TaskInstanceState / CallbackState values).
FINISHED = frozenset({"success", "failed"})


class LocalExecutor(AirflowLocalExecutor):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.unreported: Counter = Counter()

    def _process_workloads(self, workload_list: Any) -> None:
        for workload in workload_list:
            self.unreported[workload.key] += 1
        super()._process_workloads(workload_list)

    def change_state(self, key: Any, state: Any, info: Any = None, remove_running: bool = True) -> None:
        if getattr(state, "value", state) in FINISHED and self.unreported[key] > 0:
            self.unreported[key] -= 1
            if not self.unreported[key]:
                del self.unreported[key]
        super().change_state(key, state, info, remove_running)

    def has_task(self, task_instance: Any) -> bool:
        return super().has_task(task_instance) or self.unreported.get(task_instance.key, 0) > 0
