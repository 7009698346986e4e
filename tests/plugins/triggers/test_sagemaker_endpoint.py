"""orchard.triggers.sagemaker_endpoint: deploy_endpoint's wait ends the task in the triggerer once the endpoint
is InService, with the value the provider's resume would return (issue 17.1), against the sandbox and the test
session's metadata DB (as tests/plugins/triggers/test_task_end.py); a Failed endpoint or a push that fails
resumes the task instead."""

from __future__ import annotations

import pytest
from airflow.exceptions import TaskDeferred
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

from local_aws.s3io import tar_gz
from orchard.triggers.sagemaker_endpoint import SageMakerEndpointInServiceTrigger
from tests.local_aws.test_async_endpoints_and_labeling import deploy, sagemaker  # noqa: F401 (fixture)
from tests.plugins.operators.test_auto_labeling_operators import deploy_operator, endpoint  # noqa: F401
from tests.plugins.triggers.test_task_end import first_event, read_as_downstream, state_of, submit


def without_call_metadata(value: dict) -> dict:
    """The descriptions without each call's own ResponseMetadata (request id, date), which no two calls share."""
    return {
        kind: {k: v for k, v in description.items() if k != "ResponseMetadata"}
        for kind, description in value.items()
    }


def test_the_deploy_wait_ends_in_the_trigger_with_what_its_resume_would_return(endpoint, deferred, comms):  # noqa: F811
    trigger_id, ti = deferred
    operator = deploy_operator()
    with pytest.raises(TaskDeferred) as deferral:  # the wait the provider's execute defers on
        operator.defer(
            trigger=SageMakerTrigger(job_name=endpoint, job_type="endpoint", waiter_delay=1),
            method_name="execute_complete",
        )
    trigger = deferral.value.trigger
    assert isinstance(trigger, SageMakerEndpointInServiceTrigger) and trigger.end_in_trigger
    path, kwargs = trigger.serialize()  # the triggerer rebuilds it from these
    trigger = SageMakerEndpointInServiceTrigger(**kwargs)
    trigger.task_instance = ti

    event = first_event(trigger)
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and state_of(ti) == "success"
    resumed = operator.execute_complete({}, {"status": "success", "job_name": endpoint})
    pushed = read_as_downstream(ti, "return_value")
    assert without_call_metadata(pushed) == without_call_metadata(resumed)
    assert pushed["Endpoint"]["EndpointStatus"] == "InService"


def test_without_its_task_instance_the_deploy_wait_resumes_the_task(endpoint, comms):  # noqa: F811
    trigger = SageMakerEndpointInServiceTrigger(
        job_name=endpoint, job_type="endpoint", waiter_delay=1, end_in_trigger=True
    )
    event = first_event(trigger)
    assert event.payload["status"] == "success"
    assert not [msg for msg in comms.sent if type(msg).__name__ == "SetXCom"]  # nothing pushed


def endpoint_trigger(ti) -> SageMakerEndpointInServiceTrigger:
    trigger = SageMakerEndpointInServiceTrigger(
        job_name="detector", job_type="endpoint", waiter_delay=1, end_in_trigger=True
    )
    trigger.task_instance = ti
    return trigger


def test_a_failed_endpoint_resumes_the_deploy_task_to_fail(sagemaker, deferred, comms):  # noqa: F811
    from airflow.sdk.exceptions import AirflowException

    _, ti = deferred
    code = b"def model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n"
    assert deploy(sagemaker, model_data=tar_gz({"code/inference.py": code}))[-1] == "Failed"

    event = first_event(endpoint_trigger(ti))

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "failed"
    assert state_of(ti) == "deferred" and not [m for m in comms.sent if type(m).__name__ == "SetXCom"]
    with pytest.raises(AirflowException, match="Error while running job"):
        deploy_operator().execute_complete({}, event.payload)


def test_a_push_that_fails_resumes_the_deploy_task(endpoint, deferred, comms, monkeypatch):  # noqa: F811
    _, ti = deferred

    def refused(msg):
        raise RuntimeError("execution API: 500")

    monkeypatch.setattr(comms, "send", refused)
    event = first_event(endpoint_trigger(ti))

    assert type(event).__name__ == "TriggerEvent" and event.payload["status"] == "success"
    assert state_of(ti) == "deferred"  # the event resumes it on a worker, which describes the endpoint
    resumed = deploy_operator().execute_complete({}, event.payload)
    assert resumed["Endpoint"]["EndpointStatus"] == "InService"
