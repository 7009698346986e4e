"""edge_deployment's compile task ends in the triggerer (orchard.triggers.neo, issue 17.1): a COMPLETED
Neo job's downstream tasks read exactly the XComs the operator's resume would have pushed; any other end
resumes the task, whose operator words it.

The Airflow path is test_task_end's (the metadata DB, the triggerer's and a worker's request handlers);
DescribeCompilationJob answers from a fixed description, the one the resume reads too."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from unittest import mock

import pytest
from airflow.triggers.base import TriggerEvent

from orchard.hooks.neo import NeoHook
from orchard.operators.neo import NeoCompilationOperator
from orchard.triggers.neo import NeoCompilationTrigger
from tests.plugins.triggers.test_task_end import read_as_downstream, state_of, submit

JOB = "edge-deployment-x-compile"
STARTED = dt.datetime(2026, 12, 7, 12, 0, 0, tzinfo=dt.UTC)
COMPLETED = {  # DescribeCompilationJob's answer as boto3 returns it (datetimes parsed)
    "CompilationJobName": JOB,
    "CompilationJobStatus": "COMPLETED",
    "CompilationStartTime": STARTED,
    "CompilationEndTime": STARTED + dt.timedelta(seconds=3.24),
    "ModelArtifacts": {"S3ModelArtifacts": "s3://orchard-artifacts/edge/compiled/model-LINUX_X86_64.tar.gz"},
    "ModelDigests": {"ArtifactDigest": "sha256:0f1e"},
}
FAILED = {
    **COMPLETED,
    "CompilationJobStatus": "FAILED",
    "FailureReason": "ClientError: model.onnx is not a valid ONNX model",
}
OPTIONS = '{"dtype": "float32"}'


def operator() -> NeoCompilationOperator:
    return NeoCompilationOperator(
        task_id="compile",
        job_name=JOB,
        role_arn="arn:aws:iam::123456789012:role/x",
        model_uri="s3://edge/model.tar.gz",
        framework="ONNX",
        data_input_config='{"data": [1, 3, 32, 32]}',
        target="linux_x86_64",
        output_uri="s3://edge/out/",
        compiler_options=OPTIONS,
        waiter_delay=1,
    )


def trigger(ti: Any = None) -> NeoCompilationTrigger:
    made = NeoCompilationTrigger(
        job_name=JOB,
        waiter_delay=1,
        waiter_max_attempts=3,
        end_in_trigger=True,
        target="linux_x86_64",
        compiler_options=OPTIONS,
    )
    made.task_instance = ti
    return made


def answered(monkeypatch, description: dict[str, Any]) -> None:
    monkeypatch.setattr(NeoHook, "describe", lambda self, name: description if name == JOB else None)


def what_the_resume_pushes(description: dict[str, Any]) -> dict[str, Any]:
    """The XComs of `execute_complete` after the trigger's success: its own pushes, then its return value."""
    task, ti = operator(), mock.MagicMock()
    task.__dict__["hook"] = mock.MagicMock()  # the operator's cached hook, answering as the trigger's does
    task.hook.conn.describe_compilation_job.return_value = description
    returned = task.execute_complete({"ti": ti}, {"status": "success", "job_name": JOB})
    pushed = {call.kwargs["key"]: call.kwargs["value"] for call in ti.xcom_push.call_args_list}
    return {**pushed, "return_value": returned}


SUCCESS = TriggerEvent({"status": "success", "job_name": JOB})


def test_a_completed_compilation_ends_the_task_with_what_its_resume_would_push(
    deferred,
    comms,
    monkeypatch,
):
    trigger_id, ti = deferred
    answered(monkeypatch, COMPLETED)

    event = asyncio.run(trigger(ti)._ending(SUCCESS))
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent"
    assert state_of(ti) == "success"
    expected = what_the_resume_pushes(COMPLETED)
    assert set(expected) == {"return_value", "job_name", "model_artifacts"}
    for key, value in expected.items():  # package reads model_artifacts and job_name; report the value
        assert read_as_downstream(ti, key) == value
    assert expected["return_value"]["seconds"] == 3.2
    assert expected["return_value"]["compiler_options"] == {"dtype": "float32"}


@pytest.mark.parametrize(
    ("event", "description"),
    [
        (SUCCESS, FAILED),  # the waiter's acceptors would not say success, but the resume judges anyway
        (SUCCESS, None),  # the job vanished between the last poll and the describe
        (TriggerEvent({"status": "error", "message": "Waiter error: FAILED", "job_name": JOB}), COMPLETED),
    ],
)
def test_any_other_end_resumes_the_task_with_the_waiters_event(
    deferred,
    comms,
    monkeypatch,
    event,
    description,
):
    trigger_id, ti = deferred
    answered(monkeypatch, description)

    ended = asyncio.run(trigger(ti)._ending(event))

    assert ended is event and comms.sent == []  # nothing pushed: the operator's resume words it
    assert state_of(ti) == "deferred"


def test_the_resume_words_a_client_error_as_an_input_error():
    from orchard.errors import InputError

    with pytest.raises(InputError, match="not a valid ONNX model .*not retried"):
        what_the_resume_pushes(FAILED)


def test_the_operator_lets_its_trigger_end_the_task_and_the_switch_survives_serialize():
    from airflow.providers.common.compat.sdk import TaskDeferred

    task = operator()
    task.__dict__["hook"] = mock.MagicMock()
    task.hook.describe.return_value = None  # no job of this run yet: it creates one, then defers
    with pytest.raises(TaskDeferred) as deferral:
        task.execute({"ti": mock.MagicMock()})

    made = deferral.value.trigger
    path, kwargs = made.serialize()
    assert kwargs["end_in_trigger"] is True
    assert (kwargs["target"], kwargs["compiler_options"]) == ("linux_x86_64", OPTIONS)
    assert NeoCompilationTrigger(**kwargs).serialize() == (path, kwargs)
