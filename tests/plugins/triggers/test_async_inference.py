"""orchard.triggers.async_inference: a shard whose every frame has its output or failure object ends in the
triggerer with what the invoke operator's resume would return (issue 17.1), against the sandbox (S3, the
endpoint) and the test session's metadata DB (the task end, as in tests/plugins/triggers/test_task_end.py);
and a push or an S3 write that fails at that end resumes the task instead."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
from airflow.exceptions import TaskDeferred

from local_aws import aws_connection
from orchard.operators.async_inference import SageMakerAsyncInvokeOperator
from orchard.triggers.async_inference import AsyncInferenceOutputsTrigger
from tests.faults.sandbox_faults import faults
from tests.local_aws.test_async_endpoints_and_labeling import BUCKET, sagemaker  # noqa: F401 (fixture)
from tests.plugins.operators.test_auto_labeling_operators import endpoint, shard_with_frames  # noqa: F401
from tests.plugins.triggers.test_task_end import read_as_downstream, state_of, submit


def deferred_shard(
    endpoint_name: str, ti
) -> tuple[SageMakerAsyncInvokeOperator, AsyncInferenceOutputsTrigger]:
    """A shard of 3 frames and a broken one invoked, and the trigger its task deferred on, as the triggerer
    rebuilds it (from `serialize`) for task instance `ti`."""
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke",
        endpoint_name=endpoint_name,
        shard=shard_with_frames(3),
        waiter_delay=1,
        max_wait_s=60,
    )
    with pytest.raises(TaskDeferred) as deferral:
        operator.execute({})
    path, kwargs = deferral.value.trigger.serialize()
    trigger = AsyncInferenceOutputsTrigger(**kwargs)
    trigger.task_instance = ti
    return operator, trigger


def first_event(trigger):
    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def all_answered(trigger: AsyncInferenceOutputsTrigger) -> None:
    """Wait until every frame has its output or failure object (the wait of a trigger without a task)."""
    waiting = AsyncInferenceOutputsTrigger(**trigger.serialize()[1])
    assert first_event(waiting).payload["status"] == "success"


def record() -> dict:
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read())


def test_a_shard_ends_in_the_trigger_with_what_its_resume_would_return(endpoint, deferred, comms):  # noqa: F811
    """Issue 17.1: once every frame has its output or failure object, the trigger writes the results into the
    record and ends the task with the summary as its return value: no worker process on the critical path.
    A downstream task (collect_predictions) reads what execute_complete would have returned."""
    trigger_id, ti = deferred
    operator, trigger = deferred_shard(endpoint, ti)
    assert trigger.end_in_trigger and trigger.shard_index == 0

    event = first_event(trigger)
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and state_of(ti) == "success"
    ended = record()
    [failed] = [r for r in ended["results"] if r["status"] == "failed"]
    assert failed["input"].endswith("broken.png") and "not a decodable image" in failed["reason"]
    resumed = operator.execute_complete({}, {"status": "success", "record_uri": operator.shard["record_uri"]})
    assert (
        read_as_downstream(ti, "return_value")
        == resumed
        == {
            "shard": 0,
            "answered": 3,
            "failed": 1,
            "unanswered": 0,
            "record_uri": operator.shard["record_uri"],
        }
    )
    assert record() == ended


def test_a_push_that_fails_resumes_the_shards_task(endpoint, deferred, comms, monkeypatch):  # noqa: F811
    trigger_id, ti = deferred
    operator, trigger = deferred_shard(endpoint, ti)

    def refused(msg):
        raise RuntimeError("execution API: 500")

    monkeypatch.setattr(comms, "send", refused)
    event = first_event(trigger)

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "success"
    assert state_of(ti) == "deferred"  # the event resumes it on a worker, which pushes the summary
    assert operator.execute_complete({}, event.payload)["answered"] == 3


def test_a_record_write_that_fails_resumes_the_shards_task(aws, endpoint, deferred, comms, monkeypatch):  # noqa: F811
    """S3 refusing the record's PutObject (500 InternalError) at the trigger's end: the task resumes, and its
    operator writes the record, with the task's retries, instead of the trigger failing."""
    trigger_id, ti = deferred
    operator, trigger = deferred_shard(endpoint, ti)
    all_answered(trigger)  # the endpoint's own writes are done before S3 refuses writes
    # one retry per call: the 10 of the stack's connection (local_aws.aws_connection) back off for a minute
    one_try = json.loads(aws_connection(aws.url))
    one_try["extra"]["config_kwargs"]["retries"] = {"mode": "standard", "max_attempts": 1}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ONE_TRY", json.dumps(one_try))
    trigger = AsyncInferenceOutputsTrigger(**{**trigger.serialize()[1], "aws_conn_id": "aws_one_try"})
    trigger.task_instance = ti
    refusing = {
        "include_admin": True,
        "rules": [{"service": "s3", "operation": "PutObject", "server_error": 1.0}],
    }

    with faults(aws.url, refusing) as injected:
        event = first_event(trigger)

    assert injected["injected"], injected
    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "success"
    assert "results" not in record() and state_of(ti) == "deferred"
    assert not [msg for msg in comms.sent if type(msg).__name__ == "SetXCom"]
    assert operator.execute_complete({}, event.payload)["failed"] == 1 and "results" in record()
