"""A deferred job task ends in the triggerer and its downstream tasks read exactly the XComs its resume
would have pushed (orchard.triggers.task_end, issue 17.1).

The Airflow path is the real one, against the test session's metadata DB: a DAG run whose job task is
deferred on a Trigger row; the trigger's pushes go through the request handler the triggerer's supervisor
uses (`handle_set_xcom`) over the in-process execution API client the triggerer builds; the event goes
through `Trigger.submit_event` (the triggerer's `handle_event_submit`); the downstream read goes through the
Task SDK's `XCom.get_one` and the worker supervisor's `handle_get_xcom`. The live stack (scheduler,
triggerer, workers as processes) runs it in `benchmarks/airflow_overhead.py` runs of pose_training and
aerial_pretraining, whose downstream tasks read these values (docs/architecture.md, last section).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchard.triggers.batch import BatchJobWaitTrigger
from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger
from orchard.triggers.task_end import end_with_xcoms, warm_the_supervisors_api
from tests.airflow_runs import new_run
from tests.e2e.conftest import airflow_db  # noqa: F401 (fixture)

DAG_ID, JOB_TASK, READER = "orchard_task_end_probe", "train", "check_export"
JOB_ID = "3f2a9c1e-0b7d-4c1a-9e55-1d2b3c4d5e6f"
DESCRIPTION = {  # a SageMaker Describe...Job as the provider serializes it: nested, with a datetime's repr
    "Training": {
        "TrainingJobName": "aerial-pretraining-x-pretrain",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://orchard-artifacts/models/model.tar.gz"},
        "HyperParameters": {"epochs": "2"},
        "TrainingEndTime": "datetime.datetime(2026, 12, 7, 6, 0, tzinfo=tzlocal())",
        "FinalMetricDataList": [{"MetricName": "loss", "Value": 0.25}],
    }
}
PROBE_DAG = f"""
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="{JOB_TASK}") >> EmptyOperator(task_id="{READER}")
"""


class SupervisorsComms:
    """SUPERVISOR_COMMS answered as Airflow's supervisors answer it: the triggerer's (`SetXCom`,
    jobs/triggerer_job_runner.py `_handle_request`) and a worker's (`GetXCom`, supervisor.py) call the same
    request handlers, here over the in-process execution API client the triggerer builds (`make_client`)."""

    def __init__(self) -> None:
        from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

        self.client = TriggerRunnerSupervisor.make_client(None)  # type: ignore[arg-type]  (self unused)
        self.sent: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetDagRunState, GetXCom, SetXCom
        from airflow.sdk.execution_time.request_handlers import (
            handle_get_dag_run_state,
            handle_get_xcom,
            handle_set_xcom,
        )

        self.sent.append(msg)
        handler = {
            SetXCom: handle_set_xcom,
            GetXCom: handle_get_xcom,
            GetDagRunState: handle_get_dag_run_state,
        }[type(msg)]
        return handler(self.client, msg)[0]

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)


@pytest.fixture
def comms(monkeypatch) -> SupervisorsComms:
    from airflow.sdk.execution_time import task_runner

    answering = SupervisorsComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", answering, raising=False)
    return answering


@pytest.fixture
def deferred(airflow_db, tmp_path):  # noqa: F811 (the fixture imported above)
    """(trigger row id, the job task's TaskInstance): a fresh run of the probe DAG, its job task deferred."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        run = new_run(tmp_path, DAG_ID, PROBE_DAG, session)
        trigger = Trigger(classpath="orchard.triggers.batch.BatchJobWaitTrigger", kwargs={})
        session.add(trigger)
        session.flush()
        ti = run.get_task_instance(JOB_TASK, session=session)
        ti.state, ti.trigger_id, ti.next_method = TaskInstanceState.DEFERRED, trigger.id, "execute_complete"
        session.flush()
        session.expunge(ti)
        return trigger.id, ti


def first_event(trigger: Any) -> Any:
    """The first event `trigger.run()` yields, as the triggerer takes it."""

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def read_as_downstream(ti: Any, key: str) -> Any:
    """The value a downstream task of the same run reads (Task SDK XCom.get_one, as `ti.xcom_pull` does)."""
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_one(
        key=key, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
    )


def state_of(ti: Any) -> str:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(TaskInstance, ti.id).state


def submit(trigger_id: int, event: Any) -> None:
    """What the triggerer's supervisor does with a trigger's event (TriggerRunnerSupervisor.handle_events)."""
    from airflow.models.trigger import Trigger

    Trigger.submit_event(trigger_id, event)


def batch_trigger(ti: Any) -> BatchJobWaitTrigger:
    trigger = BatchJobWaitTrigger(
        job_id=JOB_ID,
        job_name="pose-training-x-train",
        waiter_delay=1,
        waiter_max_attempts=1,
        end_in_trigger=True,
        cloudwatch_link={"region_name": "eu-west-1", "aws_domain": "aws.amazon.com"},
    )
    trigger.task_instance = ti
    return trigger


SUCCEEDED_JOB = {
    "jobId": JOB_ID,
    "status": "SUCCEEDED",
    "container": {
        "logStreamName": "orchard-pose/default/abc123",
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/aws/batch/job"}},
    },
}


def test_a_batch_task_ended_in_the_trigger_gives_downstream_the_values_its_resume_would(deferred, comms):
    trigger_id, ti = deferred
    trigger = batch_trigger(ti)

    event = asyncio.run(trigger._succeeded(SUCCEEDED_JOB))
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and not event.xcoms  # the XComs went through the SDK
    assert state_of(ti) == "success"
    assert read_as_downstream(ti, "return_value") == JOB_ID  # the job id, not '"<job id>"'
    # the provider's CloudWatchEventsLink value, as BatchOperator._persist_cloudwatch_link pushes it
    assert read_as_downstream(ti, "cloudwatch_events") == {
        "region_name": "eu-west-1",
        "aws_domain": "aws.amazon.com",
        "awslogs_stream_name": "orchard-pose/default/abc123",
        "awslogs_group": "/aws/batch/job",
        "awslogs_region": "eu-west-1",
    }
    # and the link's URL, which the UI's "CloudWatch Events" button reads (the worker's finalize pushes it)
    assert read_as_downstream(ti, "_link_CloudWatchEventsLink") == (
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/"
        "%2Faws%2Fbatch%2Fjob/log-events/orchard-pose%2Fdefault%2Fabc123"
    )


def test_a_sagemaker_description_round_trips_nested_and_unchanged(deferred, comms):
    trigger_id, ti = deferred
    trigger = OrchardSageMakerTrigger(job_name="j", job_type="Training", end_in_trigger=True)
    trigger.task_instance = ti

    event = asyncio.run(end_with_xcoms(trigger, {"return_value": DESCRIPTION}))
    submit(trigger_id, event)

    assert state_of(ti) == "success"
    assert read_as_downstream(ti, "return_value") == DESCRIPTION


def test_the_events_own_xcoms_would_reach_downstream_encoded_twice(deferred, comms):
    """Why the XComs do not ride in the event (Airflow 3.3.2): handle_event_submit pushes them with the ORM's
    XComModel.set(serialize=True), and a downstream task reads a JSON string instead of the value. If this
    starts failing, Airflow fixed it and the event may carry them again."""
    from airflow.triggers.base import TaskSuccessEvent

    trigger_id, ti = deferred
    submit(trigger_id, TaskSuccessEvent(xcoms={"return_value": JOB_ID}))

    assert state_of(ti) == "success"
    assert read_as_downstream(ti, "return_value") == f'"{JOB_ID}"'


def test_without_its_task_instance_the_trigger_resumes_the_task(comms):
    """dag.test() runs a trigger in line without a task instance and resumes the task after any event."""
    trigger = BatchJobWaitTrigger(job_id=JOB_ID, waiter_delay=1, waiter_max_attempts=1, end_in_trigger=True)

    event = asyncio.run(trigger._succeeded(SUCCEEDED_JOB))

    assert event.payload["status"] == "success" and comms.sent == []


def test_a_push_that_fails_resumes_the_task(deferred, comms, monkeypatch):
    trigger_id, ti = deferred
    trigger = batch_trigger(ti)

    def refused(msg: Any) -> Any:
        raise RuntimeError("execution API: 500")

    monkeypatch.setattr(comms, "send", refused)

    event = asyncio.run(trigger._succeeded(SUCCEEDED_JOB))

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "success"
    assert state_of(ti) == "deferred"  # nothing submitted yet: the event resumes it on a worker


def test_the_switch_survives_the_triggerers_rebuild_from_serialize():
    for trigger in (
        BatchJobWaitTrigger(job_id=JOB_ID, waiter_delay=1, waiter_max_attempts=1, end_in_trigger=True),
        OrchardSageMakerTrigger(job_name="j", job_type="Training", end_in_trigger=True, stream_logs=True),
    ):
        path, kwargs = trigger.serialize()
        rebuilt = type(trigger)(**kwargs)
        assert rebuilt.end_in_trigger is True and rebuilt.serialize() == (path, kwargs)


def test_the_wait_starts_by_having_the_supervisor_build_its_api(deferred, comms):
    """The supervisor's first request imports the execution API app (33 s under load on the stack): asked
    at the start of the wait, not when the job ended and the task's XComs must go out."""
    _, ti = deferred

    asyncio.run(warm_the_supervisors_api(batch_trigger(ti)))

    [asked] = comms.sent
    assert type(asked).__name__ == "GetDagRunState" and asked.run_id == ti.run_id
