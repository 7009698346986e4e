"""A running EMR step's stdout/stderr lines reach the task log while the step wait is deferred (read from
the cluster's LogUri as EMR archives them), once each; the log never decides the wait."""

from __future__ import annotations

import asyncio
import gzip
import logging
from typing import Any
from unittest import mock

import boto3
import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import ClientError

from orchard.fruit_features.waits import EmrAddStepsSizedWait, EmrStepSensorSizedWait
from orchard.triggers import emr_step
from orchard.triggers.emr_step import (
    LINES_PER_POLL,
    EmrAddStepsLogTrigger,
    EmrStepLogTrigger,
    StepLogTail,
    step_log_folder,
)
from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.test_emr import BUCKET, cluster  # noqa: F401 (fixture)
from tests.plugins.triggers.test_job_logs import PAUSE_S, Lines, assert_streamed, run_until_done
from tests.plugins.triggers.test_task_end import first_event, read_as_downstream, state_of, submit


def test_a_steps_lines_reach_the_task_log_while_it_runs(cluster):  # noqa: F811 (fixture)
    boto3.client("s3").upload_file(
        str(TEST_JOB_ROOT / "spark_step" / "two_lines.py"), BUCKET, "code/two_lines.py"
    )
    step_id = boto3.client("emr").add_job_flow_steps(
        JobFlowId=cluster,
        Steps=[
            {
                "Name": "two-lines",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": ["spark-submit", f"s3://{BUCKET}/code/two_lines.py", str(PAUSE_S)],
                },
            }
        ],
    )["StepIds"][0]
    trigger = EmrStepLogTrigger(job_flow_id=cluster, step_id=step_id, waiter_delay=2, waiter_max_attempts=300)
    assert trigger.serialize()[1]["stream_logs"] is True  # survives a triggerer restart

    lines = Lines()
    payload, ended_at = asyncio.run(asyncio.wait_for(run_until_done(trigger, lines), timeout=540))

    assert payload["status"] == "success", payload
    assert_streamed(payload, ended_at, lines, step_id)
    assert lines.when(f"the step's logs: s3://{BUCKET}/logs/{cluster}/steps/{step_id}/")


def test_the_step_folder_follows_the_loguri_emr_reports():
    assert step_log_folder("s3n://logs-bucket/emr/", "j-1", "s-1") == ("logs-bucket", "emr/j-1/steps/s-1/")
    assert step_log_folder("s3://logs-bucket", "j-1", "s-1") == ("logs-bucket", "j-1/steps/s-1/")


class FakeBody:
    def __init__(self, data: bytes):
        self.data = data

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    async def read(self) -> bytes:
        return self.data


class FakeS3:
    """GetObject over whole gzip objects, rewritten by `push`, answering If-None-Match as S3 does."""

    def __init__(self):
        self.objects: dict[str, tuple[str, bytes]] = {}
        self.fail: Exception | None = None

    def push(self, key: str, text: str) -> None:
        self.objects[key] = (f'"{len(self.objects)}-{len(text)}"', gzip.compress(text.encode()))

    async def get_object(self, Bucket, Key, IfNoneMatch=None):
        if self.fail:
            raise self.fail
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        etag, data = self.objects[Key]
        if IfNoneMatch == etag:
            raise ClientError({"Error": {"Code": "304", "Message": "Not Modified"}}, "GetObject")
        return {"ETag": etag, "ContentLength": len(data), "Body": FakeBody(data)}


class FakeEmr:
    def __init__(self, log_uri: str | None):
        self.log_uri = log_uri

    async def describe_cluster(self, ClusterId):
        return {"Cluster": {"Id": ClusterId, **({"LogUri": self.log_uri} if self.log_uri else {})}}


STDOUT = "emr/j-1/steps/s-1/stdout.gz"


def tail_with(log_uri: str | None = "s3n://logs-bucket/emr/") -> tuple[StepLogTail, FakeS3, Lines]:
    lines = Lines()
    logger = logging.getLogger(f"test_emr_step.{id(lines)}")
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    s3 = FakeS3()
    return StepLogTail(s3, FakeEmr(log_uri), "j-1", ["s-1"], logger), s3, lines


def messages(lines: Lines) -> list[str]:
    return [message for _, message in lines.seen if message.startswith("[s-1] line")]


def test_each_complete_line_is_logged_once_and_a_half_written_one_when_whole():
    tail, s3, lines = tail_with()
    asyncio.run(tail.follow())  # nothing pushed yet: not an error
    s3.push(STDOUT, "line 1\nline 2\nline 3 half")
    asyncio.run(tail.follow())
    asyncio.run(tail.follow())  # unchanged (304): nothing new
    s3.push(STDOUT, "line 1\nline 2\nline 3 half, now whole\nline 4\n")
    asyncio.run(tail.follow(final=True))

    assert messages(lines) == ["[s-1] line 1", "[s-1] line 2", "[s-1] line 3 half, now whole", "[s-1] line 4"]
    assert not tail.broken


def test_a_poll_logs_at_most_its_bound_and_the_next_poll_goes_on():
    tail, s3, lines = tail_with()
    s3.push(STDOUT, "".join(f"line {n}\n" for n in range(LINES_PER_POLL + 3)))
    asyncio.run(tail.follow())
    assert len(messages(lines)) == LINES_PER_POLL
    asyncio.run(tail.follow())  # the same version (304): the rest comes from what was taken
    assert messages(lines)[-3:] == [f"[s-1] line {n}" for n in range(LINES_PER_POLL, LINES_PER_POLL + 3)]
    assert len(messages(lines)) == LINES_PER_POLL + 3


def test_a_cluster_without_loguri_or_an_unreadable_log_stops_the_tail_not_the_wait():
    tail, _, lines = tail_with(log_uri=None)
    asyncio.run(tail.follow())
    assert tail.broken and any("has no LogUri" in message for _, message in lines.seen)

    tail, s3, lines = tail_with()
    s3.fail = ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject")
    asyncio.run(tail.follow())
    assert tail.broken and any("stopped following" in message for _, message in lines.seen)


def test_the_wait_ends_with_the_steps_state_even_when_reading_the_log_breaks():
    """A bug in the log reading (not a ClientError) is logged; the provider's wait still decides."""

    async def wait_succeeds(self):
        await asyncio.sleep(0.05)
        yield mock.Mock(payload={"status": "success", "value": None})

    async def broken_follow(self, final=False):
        raise RuntimeError("unexpected")

    trigger = EmrStepLogTrigger(job_flow_id="j-1", step_id="s-1", waiter_delay=1, waiter_max_attempts=3)
    with (
        mock.patch.object(emr_step.EmrStepSensorTrigger, "run", wait_succeeds),  # the provider's wait
        mock.patch.object(StepLogTail, "follow", broken_follow),
        mock.patch("airflow.providers.amazon.aws.hooks.s3.S3Hook.get_async_conn", _fake_conn),
        mock.patch.object(type(trigger), "hook", lambda self: mock.Mock(get_async_conn=_fake_conn)),
    ):
        payload, _ = asyncio.run(run_until_done(trigger, Lines()))
    assert payload == {"status": "success", "value": None, "log_printed": True}


async def _fake_conn(*args, **kwargs):
    client = mock.MagicMock()
    client.__aenter__ = mock.AsyncMock(return_value=client)
    client.__aexit__ = mock.AsyncMock(return_value=None)
    return client


def test_the_fruit_step_wait_defers_with_the_log_trigger_and_the_tasks_connection():
    sensor = EmrStepSensorSizedWait(
        task_id="wait",
        job_flow_id="j-1",
        step_id=["s-1"],
        deferrable=True,
        max_attempts="3",
        poll_seconds="5",
        region_name="eu-west-3",
        verify=False,
        botocore_config={"retries": {"max_attempts": 7}},
    )
    with mock.patch.object(type(sensor), "poke", return_value=False), pytest.raises(TaskDeferred) as deferral:
        sensor.execute({})
    path, params = deferral.value.trigger.serialize()
    assert path == "orchard.triggers.emr_step.EmrStepLogTrigger"
    rebuilt = EmrStepLogTrigger(**params)  # as the triggerer rebuilds it
    assert rebuilt.stream_logs is True and rebuilt.serialized_fields == {
        "job_flow_id": "j-1",
        "step_id": "s-1",
    }
    hook = rebuilt.hook()
    assert (hook.region_name, hook.verify, rebuilt.waiter_delay, rebuilt.attempts) == (
        "eu-west-3",
        False,
        5,
        3,
    )


def test_the_fruit_add_steps_wait_defers_with_the_log_trigger_and_the_tasks_connection():
    """fruit_features' `extract` is where the DAG waits for its step (the sensor after it finds it ended)."""
    operator = EmrAddStepsSizedWait(
        task_id="extract",
        job_flow_id="j-1",
        steps=[{"Name": "s", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}],
        deferrable=True,
        waiter_delay="5",
        waiter_max_attempts="3",
        region_name="eu-west-3",
        verify=False,
    )
    with (
        mock.patch.object(type(operator.hook), "add_job_flow_steps", return_value=["s-1"]),
        mock.patch("airflow.providers.amazon.aws.operators.emr.get_log_uri", return_value=None),
        mock.patch.object(type(operator.hook), "conn", mock.PropertyMock()),
        pytest.raises(TaskDeferred) as deferral,
    ):
        operator.execute({"ti": mock.MagicMock()})
    path, params = deferral.value.trigger.serialize()
    assert path == "orchard.triggers.emr_step.EmrAddStepsLogTrigger"
    rebuilt = EmrAddStepsLogTrigger(**params)
    assert rebuilt.step_ids() == ["s-1"] and rebuilt.stream_logs is True
    assert rebuilt.end_in_trigger is True and rebuilt.serialize() == (path, params)  # issue 17.1
    assert (rebuilt.hook().region_name, rebuilt.waiter_delay, rebuilt.attempts) == ("eu-west-3", 5, 3)
    quiet = EmrAddStepsSizedWait(task_id="q", job_flow_id="j-1", steps=[], deferrable=True, stream_logs=False)
    provider_trigger = emr_step.EmrAddStepsTrigger(
        job_flow_id="j-1", step_ids=["s-1"], waiter_delay=1, waiter_max_attempts=1
    )
    with pytest.raises(TaskDeferred) as deferral:
        quiet.defer(trigger=provider_trigger, method_name="execute_complete")
    assert type(deferral.value.trigger).__name__ == "EmrAddStepsTrigger"


@pytest.mark.parametrize(("limit", "size"), [("MAX_OBJECT_BYTES", 10), ("MAX_TEXT_BYTES", 100)])
def test_a_log_too_large_to_follow_gets_a_pointer_not_a_download_every_poll(monkeypatch, limit, size):
    monkeypatch.setattr(emr_step, limit, size)
    tail, s3, lines = tail_with()
    s3.push(STDOUT, "line\n" * 500)
    asyncio.run(tail.follow())
    s3.push(STDOUT, "line\n" * 600)
    asyncio.run(tail.follow(final=True))

    assert messages(lines) == [] and not tail.broken
    pointers = [m for _, m in lines.seen if "too large to follow" in m]
    assert pointers == [f"[s-1] stdout.gz is too large to follow here: s3://logs-bucket/{STDOUT}"]


STEPS_DONE = {"status": "success", "value": ["s-1"]}  # the provider's event: every step COMPLETED


def add_steps_trigger(ti: Any) -> EmrAddStepsLogTrigger:
    trigger = EmrAddStepsLogTrigger(
        job_flow_id="j-1",
        step_ids=["s-1"],
        waiter_delay=1,
        waiter_max_attempts=3,
        stream_logs=False,
        end_in_trigger=True,
    )
    trigger.task_instance = ti
    return trigger


def test_completed_steps_end_extract_with_the_step_ids_its_resume_would_return(
    deferred,
    comms,
):
    """Issue 17.1: fruit_features' `extract` ends in the triggerer; wait_for_extract and record_timing read
    the same list of step ids the resume (`EmrAddStepsOperator.execute_complete`) would have returned."""
    from orchard.fruit_features.clusters import OrchardEmrAddStepsOperator

    async def steps_done(self):
        yield TriggerEvent(STEPS_DONE)

    trigger_id, ti = deferred
    with mock.patch.object(emr_step.EmrAddStepsTrigger, "run", steps_done):  # the provider's wait
        event = first_event(add_steps_trigger(ti))
    submit(trigger_id, event)

    assert type(event).__name__ == "TaskSuccessEvent" and state_of(ti) == "success"
    resumed = OrchardEmrAddStepsOperator(task_id="extract", job_flow_id="j-1", steps=[])
    assert read_as_downstream(ti, "return_value") == resumed.execute_complete({}, STEPS_DONE) == ["s-1"]


def test_a_failed_step_resumes_extract_whose_operator_names_an_input_error(
    deferred,
    comms,
):
    from orchard.errors import InputError
    from orchard.fruit_features.clusters import OrchardEmrAddStepsOperator

    failed = TriggerEvent({"status": "failure", "message": "Steps failed", "value": ["s-1"]})
    trigger_id, ti = deferred

    ended = asyncio.run(add_steps_trigger(ti)._ending(failed))

    assert ended is failed and comms.sent == [] and state_of(ti) == "deferred"
    resumed = OrchardEmrAddStepsOperator(task_id="extract", job_flow_id="j-1", steps=[])
    step = {"Message": "InputError: no images under s3://data/fruits/", "LogFile": "s3://logs/j-1/steps/s-1/"}
    with (
        mock.patch.object(OrchardEmrAddStepsOperator, "_failures", return_value=[step]),
        pytest.raises(InputError, match="no images under s3://data/fruits/"),
    ):
        resumed.execute_complete({}, failed.payload)
