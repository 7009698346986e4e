"""orchard's LocalExecutor: a resumed deferred task is not failed by its first process's late SUCCESS
(apache/airflow#72716; plugins/orchard/local_executor.py).

The scheduler's side is Airflow's own `SchedulerJobRunner.process_executor_events`, against a task instance of
a real run in the test session's metadata DB; the executor's side is the real LocalExecutor code with its
worker processes left out (what a worker would report is put on its result queue, as `_run_worker` does).
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import queue

import pytest

from tests.airflow_runs import new_run
from tests.e2e.conftest import airflow_db  # noqa: F401 (fixture)

DAG_ID, TASK_ID = "orchard_defer_resume_probe", "wait_for_job"
PROBE_DAG = f"""
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="{TASK_ID}")
"""
SCHEDULER_JOB_ID = 7


def without_workers(executor):
    """`executor` as `start()` leaves it, with no worker process: workloads wait on its activity queue."""
    executor.activity_queue, executor.result_queue = queue.Queue(), queue.Queue()
    executor.workers = {}
    executor._unread_messages = multiprocessing.Value(ctypes.c_uint)
    executor._check_workers = lambda: None
    return executor


def run_on(executor, ti, session) -> None:
    """The scheduler's hand-over of `ti` to `executor` (queue_workload, then trigger_tasks)."""
    from airflow.executors.workloads import ExecuteTask

    executor.queue_workload(ExecuteTask.make(ti), session=session)
    executor.trigger_tasks(open_slots=1)


def worker_reports(executor, ti, state: str) -> None:
    """A worker's report that the process it ran for `ti` ended, read by the executor's `sync()`."""
    executor.result_queue.put((ti.key, state, None))
    executor.sync()


@pytest.fixture
def resumed_task(airflow_db, tmp_path):  # noqa: F811 (the fixture imported above)
    """A session and the task instance of a fresh run: queued by the scheduler, about to start."""
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        run = new_run(tmp_path, DAG_ID, PROBE_DAG, session)
        ti = run.get_task_instance(TASK_ID, session=session)
        ti.try_number, ti.state, ti.queued_by_job_id = 1, TaskInstanceState.QUEUED, SCHEDULER_JOB_ID
        session.flush()
        yield session, ti


def defer_then_resume(executor, session, ti) -> None:
    """The deferrable task's life up to its race: it runs and defers; its trigger fires; the scheduler hands
    the resumed task to the executor and it starts RUNNING, all before the first process's exit is read."""
    from airflow.utils.state import TaskInstanceState

    run_on(executor, ti, session)
    ti.state, ti.next_method = TaskInstanceState.DEFERRED, "execute_complete"
    session.flush()
    ti.state = TaskInstanceState.SCHEDULED  # the trigger's event (Trigger.submit_event)
    session.flush()
    run_on(executor, ti, session)
    ti.state = TaskInstanceState.RUNNING  # the resumed process's `run` call
    session.flush()


def scheduler_reads_the_events(executor, session) -> None:
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagbag import DBDagBag

    SchedulerJobRunner.process_executor_events(
        executor=executor, job_id=SCHEDULER_JOB_ID, scheduler_dag_bag=DBDagBag(), session=session
    )
    session.flush()


def state_of(session, ti):
    from airflow.models.taskinstance import TaskInstance

    return session.get(TaskInstance, ti.id).state


@pytest.mark.parametrize(
    ("executor_path", "expected"),
    [
        ("orchard.local_executor.LocalExecutor", "running"),
        # Airflow's own executor fails the resumed try (no retries here; with retries: up_for_retry under a
        # new task instance id, so the resumed process's success call gets 404): the race this module is for
        ("airflow.executors.local_executor.LocalExecutor", "failed"),
    ],
)
def test_the_first_processs_late_success_leaves_the_resumed_task_running(
    resumed_task, executor_path, expected
):
    module, name = executor_path.rsplit(".", 1)
    session, ti = resumed_task
    executor = without_workers(getattr(importlib.import_module(module), name)(parallelism=2))
    defer_then_resume(executor, session, ti)

    worker_reports(executor, ti, "success")  # the process that deferred: its exit, read late
    scheduler_reads_the_events(executor, session)

    assert state_of(session, ti) == expected


def test_a_task_whose_last_process_ended_is_no_longer_the_executors(resumed_task):
    from orchard.local_executor import LocalExecutor

    session, ti = resumed_task
    executor = without_workers(LocalExecutor(parallelism=2))
    defer_then_resume(executor, session, ti)

    worker_reports(executor, ti, "running")  # a worker's start notice is not an end
    worker_reports(executor, ti, "success")
    assert executor.has_task(ti)
    worker_reports(executor, ti, "success")  # the resumed process ended too
    assert not executor.has_task(ti) and not executor.unreported


def test_a_task_killed_outside_airflow_is_still_failed(resumed_task):
    """Its only process reported, so the executor no longer holds it: the scheduler's handling of a task
    killed externally (failed, or up for retry) runs as with Airflow's executor."""
    from airflow.utils.state import TaskInstanceState

    from orchard.local_executor import LocalExecutor

    session, ti = resumed_task
    executor = without_workers(LocalExecutor(parallelism=2))
    run_on(executor, ti, session)
    ti.state = TaskInstanceState.RUNNING
    session.flush()

    worker_reports(executor, ti, "failed")
    scheduler_reads_the_events(executor, session)

    assert state_of(session, ti) == "failed"
