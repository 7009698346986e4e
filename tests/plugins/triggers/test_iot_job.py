"""edge_deployment's deploy task ends in the triggerer (orchard.triggers.iot_job, issue 17.1): a rollout
that met its policy gives downstream tasks (monitor, report) exactly the XComs the operator's resume would
have pushed; a rollout under it resumes the task, which pushes the outcomes and fails with their words.

Against the sandbox's IoT (a fleet of an online camera, played by this test through IoT Jobs' data plane,
and an offline one that stays QUEUED) and test_task_end's Airflow path (the metadata DB, the triggerer's
and a worker's request handlers)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from unittest import mock

import boto3
import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from orchard.hooks.iot import FleetSpec, IotHook
from orchard.operators.iot import IotDeployOperator
from orchard.triggers.iot_job import IotJobCompletedTrigger
from tests.plugins.triggers.test_task_end import read_as_downstream, state_of, submit

ONLINE, OFFLINE = "online-cam", "offline-cam"
PACKAGE = {
    "model_name": "m",
    "version": "1",
    "variant": "float32",
    "package_uri": "s3://edge/p.tar.gz",
    "sha256": "0" * 64,
    "signature": "",
    "signing_key_arn": "k",
    "signing_algorithm": "RSASSA_PSS_SHA_256",
}


def fleet(name: str) -> dict[str, Any]:
    spec = FleetSpec(
        name,
        (ONLINE, OFFLINE),
        "orchard-data",
        f"captures/{name}",
        "edge",
        "packages/",
        "arn:aws:kms:us-east-1:123456789012:key/k",
        {"buffer_size": 4, "batch_size": 2, "push_period_seconds": 1},
    )
    return IotHook(aws_conn_id="aws_default").ensure_fleet(spec)


def deploy(job_id: str, thing_group_arn: str, min_success_percent: float) -> IotDeployOperator:
    return IotDeployOperator(
        task_id="deploy",
        job_id=job_id,
        thing_group_arn=thing_group_arn,
        package=PACKAGE,
        waiter_delay=1,
        rollout_window_minutes=0.05,  # 3 s: the offline camera is still QUEUED when it closes
        min_success_percent=min_success_percent,
    )


def deferred_on(operator: IotDeployOperator, ti: Any) -> IotJobCompletedTrigger:
    """The trigger `operator` defers on, as the triggerer rebuilds it from its serialized kwargs."""
    with pytest.raises(TaskDeferred) as deferral:
        operator.execute({"ti": mock.MagicMock()})
    _, kwargs = deferral.value.trigger.serialize()
    trigger = IotJobCompletedTrigger(**kwargs)
    trigger.task_instance = ti
    return trigger


def online_camera_succeeds(job_id: str) -> threading.Thread:
    jobs_data = boto3.client("iot-jobs-data")

    def take_the_job() -> None:
        for _ in range(100):
            if jobs_data.start_next_pending_job_execution(thingName=ONLINE).get("execution"):
                jobs_data.update_job_execution(jobId=job_id, thingName=ONLINE, status="SUCCEEDED")
                return
            time.sleep(0.1)

    camera = threading.Thread(target=take_the_job)
    camera.start()
    return camera


def first_event(trigger: IotJobCompletedTrigger) -> Any:
    async def first() -> Any:
        return await asyncio.wait_for(trigger.run().__anext__(), timeout=60)

    return asyncio.run(first())


def what_the_resume_pushes(operator: IotDeployOperator, job_id: str) -> dict[str, Any]:
    ti = mock.MagicMock()
    returned = operator.execute_complete({"ti": ti}, {"status": "success", "job_id": job_id})
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    return {**pushed, "return_value": returned}


def test_a_rollout_that_met_its_policy_ends_the_task_with_what_its_resume_would_push(
    aws,
    deferred,
    comms,
):
    trigger_id, ti = deferred
    operator = deploy("met-policy", fleet("met-fleet")["thing_group_arn"], min_success_percent=50)
    trigger = deferred_on(operator, ti)
    assert trigger.end_in_trigger is True
    camera = online_camera_succeeds("met-policy")

    event = first_event(trigger)
    camera.join()
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent"
    assert state_of(ti) == "success"
    expected = what_the_resume_pushes(operator, "met-policy")
    assert set(expected) == {"device_outcomes", "return_value"}
    assert expected["return_value"]["succeeded"] == [ONLINE]
    assert expected["return_value"]["pending"] == [OFFLINE]
    for key, value in expected.items():
        assert read_as_downstream(ti, key) == value


def test_a_rollout_under_its_policy_resumes_the_task_to_fail_with_the_devices_words(
    aws,
    deferred,
    comms,
):
    trigger_id, ti = deferred
    operator = deploy("under-policy", fleet("under-fleet")["thing_group_arn"], min_success_percent=100)
    camera = online_camera_succeeds("under-policy")

    event = first_event(deferred_on(operator, ti))
    camera.join()

    assert type(event).__name__ == "TriggerEvent" and event.payload["window_closed"] is True
    assert "SetXCom" not in {type(msg).__name__ for msg in comms.sent}  # nothing pushed from the trigger
    assert state_of(ti) == "deferred"
    resumed = mock.MagicMock()
    with pytest.raises(AirflowException, match=f"under min_success_percent 100.*{OFFLINE} QUEUED"):
        operator.execute_complete({"ti": resumed}, event.payload)
    resumed.xcom_push.assert_called_once()  # the outcomes, for the run's report
