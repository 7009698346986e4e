"""benchmarks/executor_report_lag.py on scheduler-log lines as the local stack writes them: a deferred task's
two processes are paired with its two executor events in order, and a late report that failed the resumed
task is named."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from executor_report_lag import report_lags  # noqa: E402

KEY = "dag_id=auto_labeling loc=task_runner.py:1073 map_index=-1 run_id=demo__1 task_id=label ti_id=01a try_number=1"
EVENT = (
    "Received executor event with state success for task instance TaskInstanceKey(dag_id='auto_labeling', "
    "task_id='label', run_id='demo__1', try_number=1, map_index=-1) [airflow.jobs.scheduler_job_runner]"
)
LOG = f"""\
2026-12-07 12:01:43.071000+00:00 [info     ] Worker startup parse complete  [task] {KEY}
2026-12-07 12:01:44.100000+00:00 [info     ] ::endgroup::                   [task] {KEY}
2026-12-07 12:01:49.071000+00:00 [info     ] Worker startup parse complete  [task] {KEY}
2026-12-07T12:01:49.300000Z [info     ] {EVENT}
2026-12-07T12:01:49.360000Z [error    ] Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: auto_labeling.label demo__1 [running] ti_id=01a> finished with state success, but the task instance's state attribute is running.
2026-12-07 12:01:50.500000+00:00 [info     ] ::endgroup::                   [task] {KEY}
2026-12-07T12:01:50.800000Z [info     ] {EVENT}
"""


def test_each_process_is_paired_with_its_own_report_and_the_failed_task_is_named(tmp_path):
    log = tmp_path / "scheduler.log"
    log.write_text(LOG)

    found = report_lags(log)

    assert found["workloads"] == 2
    assert found["late"] == 1  # the deferring process: 44.1 → 49.3, 5.2 s
    assert round(found["median_lag_s"], 2) == round((5.2 + 0.3) / 2, 2)
    assert found["mismatched"] == ["auto_labeling.label"]
