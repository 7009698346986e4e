"""A running job's CloudWatch lines reach the task log while the task is deferred (the trigger logs them),
once each, and the operator does not print them again at the end."""

from __future__ import annotations

import asyncio
import logging
import time

import boto3
import pytest

from orchard.operators.batch import ReattachingBatchOperator
from orchard.triggers.batch import BatchJobWaitTrigger
from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger
from tests.local_aws.training_jobs import BUCKET, ROLE, SKLEARN_IMAGE
from tests.plugins.operators.test_batch_reattach import QUEUE, batch  # noqa: F401 (fixture)

# A job that prints a line, sleeps, prints another: the first must show while the job still runs.
TWO_LINES = (
    "import time; print('first line', flush=True); time.sleep({pause}); print('second line', flush=True)"
)
PAUSE_S = 20


class Lines(logging.Handler):
    """The messages a trigger logs, with when each came."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((time.monotonic(), record.getMessage()))

    def when(self, text: str) -> list[float]:
        return [at for at, message in self.seen if message.endswith(text)]


async def run_until_done(trigger, lines: Lines) -> tuple[dict, float]:
    """(event payload, when it came), running the trigger as the triggerer does. The trigger's `log` (a
    structlog logger, routed to the task log by the triggerer) becomes a stdlib logger that `lines` hears."""
    recorder = logging.getLogger(f"test_live_job_logs.{id(trigger)}")
    recorder.setLevel(logging.INFO)
    recorder.addHandler(lines)
    trigger._log = recorder
    async for event in trigger.run():
        return event.payload, time.monotonic()
    raise AssertionError("the trigger ended without an event")


def assert_streamed(payload: dict, ended_at: float, lines: Lines, label: str) -> None:
    first, second = lines.when(f"[{label}] first line"), lines.when(f"[{label}] second line")
    assert len(first) == 1 and len(second) == 1, lines.seen  # each line once
    assert first[0] < ended_at - PAUSE_S / 2, "the first line came only when the job ended"
    assert second[0] <= ended_at and payload["log_printed"] is True


def test_a_processing_jobs_lines_reach_the_task_log_while_it_runs(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/two_lines.py", Body=TWO_LINES.format(pause=PAUSE_S).encode())
    name = "fruit-features-manual-20261201t000000-live-logs"
    boto3.client("sagemaker").create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/two_lines.py"],
        },
        ProcessingInputs=[
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/two_lines.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    trigger = OrchardSageMakerTrigger(
        job_name=name, job_type="Processing", waiter_delay=2, waiter_max_attempts=300, stream_logs=True
    )
    assert trigger.serialize()[1]["stream_logs"] is True  # survives a triggerer restart

    lines = Lines()
    payload, ended_at = asyncio.run(asyncio.wait_for(run_until_done(trigger, lines), timeout=540))

    assert payload["status"] == "success", payload
    assert_streamed(payload, ended_at, lines, name)


def test_a_batch_jobs_lines_reach_the_task_log_while_it_runs(batch):  # noqa: F811 (fixture)
    batch.register_job_definition(
        jobDefinitionName="two-lines",
        type="container",
        containerProperties={
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0",
            "command": ["python", "-c", TWO_LINES.format(pause=PAUSE_S)],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    job_id = batch.submit_job(jobName="live-logs", jobQueue=QUEUE, jobDefinition="two-lines")["jobId"]
    trigger = BatchJobWaitTrigger(
        job_id=job_id, job_name="live-logs", waiter_delay=2, waiter_max_attempts=300, stream_logs=True
    )

    lines = Lines()
    payload, ended_at = asyncio.run(asyncio.wait_for(run_until_done(trigger, lines), timeout=540))

    assert payload["status"] == "success", payload
    assert_streamed(payload, ended_at, lines, "live-logs")


def test_the_batch_operator_does_not_print_again_what_the_trigger_streamed(monkeypatch):
    operator = ReattachingBatchOperator(
        task_id="train", job_name="j", job_queue="q", job_definition="d", awslogs_enabled=True
    )
    monkeypatch.setattr(operator, "_persist_cloudwatch_link", lambda context: None)
    monkeypatch.setattr(type(operator.hook), "check_job_success", lambda self, job_id: True)
    fetched = []
    monkeypatch.setattr(operator, "_get_batch_log_fetcher", lambda job_id: fetched.append(job_id))

    assert operator.execute_complete({}, {"status": "success", "job_id": "1", "log_printed": True}) == "1"
    assert fetched == []
    operator.awslogs_enabled = True
    operator.execute_complete({}, {"status": "success", "job_id": "2"})  # an event that did not stream
    assert fetched == ["2"]


@pytest.mark.parametrize("kind", ["Training", "Processing"])
def test_the_sagemaker_operators_stream_through_their_trigger_when_print_log(kind):
    from orchard.operators.sagemaker_processing import OrchardSageMakerProcessingOperator
    from orchard.operators.sagemaker_training import OrchardSageMakerTrainingOperator

    operator_class = {
        "Training": OrchardSageMakerTrainingOperator,
        "Processing": OrchardSageMakerProcessingOperator,
    }[kind]
    operator = operator_class(task_id="t", config={f"{kind}JobName": "j"}, check_interval=5)
    assert operator.job_trigger("j").stream_logs is True
    quiet = operator_class(task_id="t", config={f"{kind}JobName": "j"}, check_interval=5, print_log=False)
    assert quiet.job_trigger("j").stream_logs is False
