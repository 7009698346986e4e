"""The train task's Batch faults: a vanished job fails the wait fast, an input error (exit 65) is final at
both levels, a worker's SIGTERM leaves the paid job for the retry and a person's "mark failed" stops it."""

from __future__ import annotations

import asyncio
import time
from unittest import mock

import pytest

from orchard.errors import INPUT_ERROR_EXIT_CODE, InputError
from orchard.operators.batch import ReattachingBatchOperator
from orchard.triggers.batch import BatchJobWaitTrigger
from tests.plugins.operators.test_batch_reattach import JOB_NAME, QUEUE, REGISTRY, batch  # noqa: F401 (fixture)


def run_trigger(trigger: BatchJobWaitTrigger) -> tuple[dict, float]:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    started = time.monotonic()
    payload = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    return payload, time.monotonic() - started


def wait_status(client, job_id: str, wanted: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in wanted:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job_id} never reached {wanted}: {job['status']}")


def test_a_job_that_describe_jobs_no_longer_returns_fails_the_wait_within_a_few_polls(aws):
    trigger = BatchJobWaitTrigger(
        job_id="0f1e2d3c-gone", job_name=JOB_NAME, waiter_delay=0.2, waiter_max_attempts=7200
    )  # the train task's 4 h of polls

    payload, took = run_trigger(trigger)

    assert payload["status"] == "error" and payload["reason"] == "vanished"
    assert f"AWS Batch job {JOB_NAME} (0f1e2d3c-gone) no longer exists" in payload["message"]
    assert took < 10
    # the trigger survives the triggerer's restart: it serializes to its own class path
    path, kwargs = trigger.serialize()
    assert path == "orchard.triggers.batch.BatchJobWaitTrigger" and kwargs["job_id"] == "0f1e2d3c-gone"


def test_the_operator_turns_a_vanished_job_event_into_a_failure_naming_it(aws):
    op = ReattachingBatchOperator(
        task_id="train",
        job_name=JOB_NAME,
        job_queue=QUEUE,
        job_definition="d",
        deferrable=True,
        poll_interval=1,
        max_retries=3,
        awslogs_enabled=False,
    )
    event = {
        "status": "error",
        "reason": "vanished",
        "job_id": "gone",
        "message": f"AWS Batch job {JOB_NAME} (gone) no longer exists",
    }
    with mock.patch.object(ReattachingBatchOperator, "_persist_cloudwatch_link"):
        with pytest.raises(Exception, match="no longer exists") as raised:
            op.execute_complete(context={}, event=event)
    assert not isinstance(raised.value, InputError)  # not the user's fault: a retry may submit again


def test_an_input_error_exit_is_not_retried_by_batch_and_fails_the_task_without_retry(batch):  # noqa: F811
    batch.register_job_definition(
        jobDefinitionName="refuses-input",
        type="container",
        containerProperties={
            "image": f"{REGISTRY}/orchard/hello-batch:1.0",
            "command": [
                "python",
                "-c",
                "import sys; print('dlc_train: FAILED (exit 65): labeled-data/v/ "
                "holds [CollectedData_alice.csv], but the scorer is orchard', file=sys.stderr); "
                "sys.exit(65)",
            ],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
        retryStrategy={
            "attempts": 3,
            "evaluateOnExit": [
                {"onExitCode": str(INPUT_ERROR_EXIT_CODE), "action": "EXIT"},
                {"onReason": "*", "action": "RETRY"},
            ],
        },
    )
    job_id = batch.submit_job(jobName=JOB_NAME, jobQueue=QUEUE, jobDefinition="refuses-input")["jobId"]
    job = wait_status(batch, job_id, {"FAILED", "SUCCEEDED"})
    assert job["status"] == "FAILED" and len(job["attempts"]) == 1  # Batch did not retry exit 65

    op = ReattachingBatchOperator(
        task_id="train",
        job_name=JOB_NAME,
        job_queue=QUEUE,
        job_definition="refuses-input",
        deferrable=True,
        poll_interval=1,
        max_retries=3,
        awslogs_enabled=True,
        input_uri="s3://lab-uploads/projects/p.zip",
    )
    op.job_id = job_id
    event = {"status": "failure", "reason": "failed", "job_id": job_id, "exit_code": 65, "status_reason": ""}
    with mock.patch.object(ReattachingBatchOperator, "_persist_cloudwatch_link"):
        with pytest.raises(InputError) as raised:
            op.execute_complete(context={}, event=event)
    message = str(raised.value)
    assert "s3://lab-uploads/projects/p.zip" in message and "exit 65" in message
    assert "CollectedData_alice.csv" in message  # the job's own reason, from its log


class FakeTI:
    dag_id, task_id, run_id, map_index = "pose_training", "project.train", "manual__1", 0

    def __init__(self, state: str):
        self.state = state

    def get_task_states(self, **query):
        assert query["task_ids"] == [self.task_id] and query["run_ids"] == [self.run_id]
        return {self.run_id: {f"{self.task_id}_{self.map_index}": self.state}}


@pytest.mark.parametrize(("state", "terminated"), [("running", False), ("failed", True), ("success", True)])
def test_on_kill_terminates_only_when_a_person_ended_the_task(state, terminated):
    op = ReattachingBatchOperator(
        task_id="train",
        job_name=JOB_NAME,
        job_queue=QUEUE,
        job_definition="d",
        deferrable=True,
        poll_interval=1,
        max_retries=3,
    )
    op.job_id = "job-1"
    op._ti = FakeTI(state)
    client = mock.MagicMock()
    with mock.patch.object(type(op.hook), "client", new_callable=mock.PropertyMock, return_value=client):
        op.on_kill()
    assert client.terminate_job.called is terminated
