"""orchard.triggers.labeling_job: a Completed Ground Truth job ends the label task in the triggerer with the
value its resume would return (issue 17.1), against the sandbox and the test session's metadata DB (as
tests/plugins/triggers/test_task_end.py); a Failed job or a push that fails resumes the task instead."""

from __future__ import annotations

import boto3
import pytest

from orchard.triggers.labeling_job import SageMakerLabelingJobTrigger
from tests.local_aws.test_async_endpoints_and_labeling import (  # noqa: F401 (fixtures)
    BUCKET,
    labeling_request,
    manifest_in_s3,
    sagemaker,
)
from tests.plugins.operators.test_auto_labeling_operators import labeling_operator
from tests.plugins.triggers.test_task_end import first_event, read_as_downstream, state_of, submit


def test_a_completed_labeling_job_ends_the_task_in_the_trigger(manifest_in_s3, deferred, comms):  # noqa: F811
    trigger_id, ti = deferred
    manifest_in_s3.create_labeling_job(**labeling_request("job-1"))
    trigger = SageMakerLabelingJobTrigger(
        job_name="job-1", waiter_delay=1, waiter_max_attempts=60, region_name="us-east-1", end_in_trigger=True
    )
    path, kwargs = trigger.serialize()  # the triggerer rebuilds it from these
    trigger = SageMakerLabelingJobTrigger(**kwargs)
    trigger.task_instance = ti

    event = first_event(trigger)
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and state_of(ti) == "success"
    resumed = labeling_operator(job_name="job-1").execute_complete({}, {"status": "success"})
    assert read_as_downstream(ti, "return_value") == resumed
    assert resumed["status"] == "Completed" and resumed["output_manifest"].startswith("s3://")


def test_without_its_task_instance_the_labeling_wait_resumes_the_task(manifest_in_s3, comms):  # noqa: F811
    manifest_in_s3.create_labeling_job(**labeling_request("job-1"))
    trigger = SageMakerLabelingJobTrigger(
        job_name="job-1", waiter_delay=1, waiter_max_attempts=60, region_name="us-east-1", end_in_trigger=True
    )
    event = first_event(trigger)
    assert event.payload["status"] == "success"
    assert not [msg for msg in comms.sent if type(msg).__name__ == "SetXCom"]  # nothing pushed


def labeling_trigger(ti, job_name: str) -> SageMakerLabelingJobTrigger:
    trigger = SageMakerLabelingJobTrigger(
        job_name=job_name,
        waiter_delay=1,
        waiter_max_attempts=60,
        region_name="us-east-1",
        end_in_trigger=True,
    )
    trigger.task_instance = ti
    return trigger


def test_a_failed_labeling_job_resumes_the_task_to_fail_with_the_reason(manifest_in_s3, deferred, comms):  # noqa: F811
    _, ti = deferred
    boto3.client("s3").delete_bucket_cors(Bucket=BUCKET)  # Ground Truth fails a job whose images lack it
    manifest_in_s3.create_labeling_job(**labeling_request("no-cors"))

    event = first_event(labeling_trigger(ti, "no-cors"))

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "error"
    assert state_of(ti) == "deferred" and not [m for m in comms.sent if type(m).__name__ == "SetXCom"]
    with pytest.raises(RuntimeError, match="did not complete"):
        labeling_operator(job_name="no-cors").execute_complete({}, event.payload)


def test_a_push_that_fails_resumes_the_label_task(manifest_in_s3, deferred, comms, monkeypatch):  # noqa: F811
    _, ti = deferred
    manifest_in_s3.create_labeling_job(**labeling_request("job-1"))

    def refused(msg):
        raise RuntimeError("execution API: 500")

    monkeypatch.setattr(comms, "send", refused)
    event = first_event(labeling_trigger(ti, "job-1"))

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "success"
    assert state_of(ti) == "deferred"  # the event resumes it on a worker, which pushes the result
    assert labeling_operator(job_name="job-1").execute_complete({}, event.payload)["status"] == "Completed"
