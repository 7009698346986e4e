"""orchard.triggers.async_inference: a shard whose every frame has its output or failure object ends in the
triggerer with what the invoke operator's resume would return (issue 17.1), against the sandbox (S3, the
endpoint) and the test session's metadata DB (the task end, as in tests/plugins/triggers/test_task_end.py)."""

from __future__ import annotations

import asyncio
import json

import boto3
import pytest
from airflow.exceptions import TaskDeferred

from orchard.operators.async_inference import SageMakerAsyncInvokeOperator
from tests.local_aws.test_async_endpoints_and_labeling import BUCKET, sagemaker  # noqa: F401 (fixture)
from tests.plugins.operators.test_auto_labeling_operators import endpoint, shard_with_frames  # noqa: F401
from tests.plugins.triggers.test_task_end import (  # noqa: F401 (fixtures)
    airflow_db,
    comms,
    deferred,
    read_as_downstream,
    state_of,
    submit,
)


def test_a_shard_ends_in_the_trigger_with_what_its_resume_would_return(endpoint, deferred, comms):  # noqa: F811
    """Issue 17.1: once every frame has its output or failure object, the trigger writes the results into the
    record and ends the task with the summary as its return value: no worker process on the critical path.
    A downstream task (collect_predictions) reads what execute_complete would have returned."""
    trigger_id, ti = deferred
    shard = shard_with_frames(3)
    operator = SageMakerAsyncInvokeOperator(
        task_id="invoke", endpoint_name=endpoint, shard=shard, waiter_delay=1, max_wait_s=60
    )
    with pytest.raises(TaskDeferred) as deferral:
        operator.execute({})
    trigger = deferral.value.trigger
    path, kwargs = trigger.serialize()  # the triggerer rebuilds it from these
    trigger = type(trigger)(**kwargs)
    assert trigger.end_in_trigger and trigger.shard_index == 0
    trigger.task_instance = ti

    async def first_event():
        async for event in trigger.run():
            return event

    event = asyncio.run(first_event())
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and state_of(ti) == "success"
    s3 = boto3.client("s3")
    record = json.loads(s3.get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read())
    [failed] = [r for r in record["results"] if r["status"] == "failed"]
    assert failed["input"].endswith("broken.png") and "not a decodable image" in failed["reason"]
    resumed = operator.execute_complete({}, {"status": "success", "record_uri": shard["record_uri"]})
    assert (
        read_as_downstream(ti, "return_value")
        == resumed
        == {
            "shard": 0,
            "answered": 3,
            "failed": 1,
            "unanswered": 0,
            "record_uri": shard["record_uri"],
        }
    )
    assert json.loads(s3.get_object(Bucket=BUCKET, Key="shards/0.record.json")["Body"].read()) == record
