"""orchard's SageMaker training / processing operators on the sandbox: a retry never starts a duplicate job."""

from __future__ import annotations

import math

import boto3
import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from orchard.operators.sagemaker_job_retry import START_AND_UPLOAD_MARGIN_S, attempt_name, wait_budget
from orchard.operators.sagemaker_processing import OrchardSageMakerProcessingOperator
from orchard.operators.sagemaker_training import OrchardSageMakerTrainingOperator
from tests.local_aws.polling import watch_states
from tests.local_aws.training_jobs import (
    BUCKET,
    ROLE,
    SKLEARN_IMAGE,
    start_training,
    training_request,
    upload_training_inputs,
)

NAME = "aerial-pretraining-manual-20261121t100000-pretrain-0123456789"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    upload_training_inputs(client)
    return client


def training_operator(**kwargs) -> OrchardSageMakerTrainingOperator:
    return OrchardSageMakerTrainingOperator(
        task_id="pretrain", config=training_request(NAME, **kwargs), check_interval="5"
    )


def wait_training(name: str) -> str:
    sagemaker = boto3.client("sagemaker")
    return watch_states(
        lambda: sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )[-1]


def job_names() -> list[str]:
    return sorted(
        j["TrainingJobName"] for j in boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    )


def test_attempt_names_stay_legal_and_distinct():
    assert attempt_name(NAME, 1) == NAME
    assert attempt_name(NAME, 2).endswith("-r2") and len(attempt_name(NAME, 12)) <= 63
    assert len({attempt_name(NAME, n) for n in range(1, 20)}) == 19


def test_wait_is_sized_from_max_runtime_or_spot_max_wait():
    assert wait_budget({"MaxRuntimeInSeconds": 86400}, 60) == (
        math.ceil((86400 + START_AND_UPLOAD_MARGIN_S) / 60) + 1,
        86400 + START_AND_UPLOAD_MARGIN_S,
    )
    attempts, seconds = wait_budget({"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800}, 30)
    assert seconds == 172800 + START_AND_UPLOAD_MARGIN_S and attempts * 30 >= seconds


def test_first_try_starts_the_job_and_defers_with_a_sized_wait(s3):
    operator = training_operator(seconds_per_epoch=1)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    trigger = deferred.value.trigger
    assert job_names() == [NAME] and trigger.job_name == NAME
    assert trigger.waiter_delay == 5 and trigger.attempts * 5 >= 600 + START_AND_UPLOAD_MARGIN_S
    assert deferred.value.timeout.total_seconds() == 600 + START_AND_UPLOAD_MARGIN_S
    wait_training(NAME)


def test_a_retry_waits_on_the_job_still_running(s3):
    start_training(NAME, seconds_per_epoch=2)
    with pytest.raises(TaskDeferred) as deferred:
        training_operator().execute({})
    assert deferred.value.trigger.job_name == NAME and job_names() == [NAME]
    wait_training(NAME)


def test_a_retry_returns_the_completed_job_without_a_new_one(s3):
    start_training(NAME)
    assert wait_training(NAME) == "Completed"
    result = training_operator().execute({})
    assert result["Training"]["TrainingJobName"] == NAME and job_names() == [NAME]


def test_a_retry_after_a_stopped_job_starts_an_attempt_that_resumes_from_its_checkpoints(s3):
    start_training(NAME, seconds_per_epoch=3)
    sagemaker = boto3.client("sagemaker")
    logs = boto3.client("logs")

    def wrote_a_checkpoint() -> str:
        try:
            events = logs.filter_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{NAME}/"
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            return "no log yet"
        return str(any("epoch=0" in e["message"] for e in events))

    watch_states(wrote_a_checkpoint, {"True"}, timeout_s=180)
    sagemaker.stop_training_job(TrainingJobName=NAME)
    assert wait_training(NAME) == "Stopped"
    with pytest.raises(TaskDeferred) as deferred:
        training_operator().execute({})
    second = attempt_name(NAME, 2)
    assert deferred.value.trigger.job_name == second and job_names() == sorted([NAME, second])
    assert wait_training(second) == "Completed"
    events = logs.filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{second}/"
    )
    assert any("resuming from ['epoch-0.ckpt'" in e["message"] for e in events["events"])


def test_execute_complete_prints_the_job_log(s3, capfd):
    start_training(NAME)
    wait_training(NAME)
    result = training_operator().execute_complete({}, {"status": "success", "job_name": NAME})
    assert result["Training"]["TrainingJobStatus"] == "Completed"
    assert f"[{NAME}] epoch=2 loss=0.3333" in "".join(capfd.readouterr())


def test_execute_complete_prints_the_log_of_a_failed_job_then_fails(s3, capfd):
    start_training(NAME, fail=True)
    wait_training(NAME)
    with pytest.raises(Exception, match="Error while running job"):
        training_operator().execute_complete(
            {}, {"status": "failed", "job_name": NAME, "message": "asked to fail"}
        )
    assert f"[{NAME}] epoch=0 loss=1.0000" in "".join(capfd.readouterr())


def processing_request(name: str) -> dict:
    code = "/opt/ml/processing/input/code"
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", f"{code}/prepare.py"],
            "ContainerArguments": ["/opt/ml/processing/input/raw", "/opt/ml/processing/output"],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/processing",
                    "LocalPath": code,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "raw",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/data/train",
                    "LocalPath": "/opt/ml/processing/input/raw",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/counted",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_processing_retry_finds_the_job_then_reruns_only_after_a_failure(s3):
    from tests.conftest import TEST_JOB_ROOT

    s3.upload_file(
        str(TEST_JOB_ROOT / "tiny_processing" / "prepare.py"), BUCKET, "code/processing/prepare.py"
    )
    s3.put_object(Bucket=BUCKET, Key="code/processing/requirements.txt", Body=b"")
    sagemaker = boto3.client("sagemaker")
    name = NAME.replace("pretrain", "prepare")
    operator = OrchardSageMakerProcessingOperator(
        task_id="prepare", config=processing_request(name), check_interval="2"
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert deferred.value.trigger.job_name == name
    status = lambda job: sagemaker.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"]  # noqa: E731
    assert watch_states(lambda: status(name), {"Completed", "Failed", "Stopped"})[-1] == "Completed"

    retry = OrchardSageMakerProcessingOperator(
        task_id="prepare", config=processing_request(name), check_interval="2"
    )
    assert retry.execute({})["Processing"]["ProcessingJobName"] == name
    assert [j["ProcessingJobName"] for j in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]] == [
        name
    ]


# ------------------------------------------------------------- input errors, stops, kills, vanished jobs

INPUT_ERROR_SCRIPT = b"""import sys, time
from pathlib import Path
if Path("/opt/ml/processing/input/raw").exists() and "--slow" in sys.argv:
    time.sleep(120)
Path("/opt/ml/output").mkdir(parents=True, exist_ok=True)
Path("/opt/ml/output/failure").write_text("InputError: missing band file s3://orchard-data/raw/p1/p1_B03.tif")
sys.exit(65)
"""


def start_processing(s3, name: str, *, slow: bool = False) -> OrchardSageMakerProcessingOperator:
    s3.put_object(Bucket=BUCKET, Key="code/processing/prepare.py", Body=INPUT_ERROR_SCRIPT)
    s3.put_object(Bucket=BUCKET, Key="code/processing/requirements.txt", Body=b"")
    config = processing_request(name)
    if slow:
        config["AppSpecification"]["ContainerArguments"].append("--slow")
    operator = OrchardSageMakerProcessingOperator(task_id="prepare", config=config, check_interval="1")
    with pytest.raises(TaskDeferred):
        operator.execute({})
    return operator


def processing_status(name: str) -> str:
    return boto3.client("sagemaker").describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]


def test_a_job_refusing_its_input_fails_the_task_with_input_error_not_retried(s3):
    from orchard.errors import InputError

    name = NAME.replace("pretrain", "prepare")
    operator = start_processing(s3, name)
    assert watch_states(lambda: processing_status(name), {"Completed", "Failed", "Stopped"})[-1] == "Failed"
    with pytest.raises(InputError, match="s3://orchard-data/raw/p1/p1_B03.tif") as refused:
        operator.execute_complete({}, {"status": "failed", "job_name": name, "message": "InputError: ..."})
    assert "not retried" in str(refused.value)


def test_a_stopped_job_fails_the_task_though_the_waiter_calls_it_success(s3):
    from airflow.providers.common.compat.sdk import AirflowException

    start_training(NAME, seconds_per_epoch=30)
    sagemaker = boto3.client("sagemaker")
    secondary = lambda: sagemaker.describe_training_job(TrainingJobName=NAME)["SecondaryStatus"]  # noqa: E731
    watch_states(secondary, {"Training"})
    sagemaker.stop_training_job(TrainingJobName=NAME)
    assert wait_training(NAME) == "Stopped"
    with pytest.raises(AirflowException, match=f"{NAME} was stopped"):
        training_operator().execute_complete({}, {"status": "success", "job_name": NAME})


def _set_task_state(monkeypatch, state: str | None):
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    answer = {"manual__1": {"prepare": state}} if state else {}
    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(lambda **kwargs: answer))


class _TI:
    dag_id, run_id, task_id, map_index = "aerial_pretraining", "manual__1", "prepare", -1


@pytest.mark.parametrize(
    "state, stopped",
    [("running", False), (None, False), ("failed", True), ("success", True), ("restarting", True)],
)
def test_on_kill_stops_the_job_for_a_person_never_for_a_worker_shutdown(s3, monkeypatch, state, stopped):
    """Airflow 3 calls on_kill on every SIGTERM: still `running` in the database = the worker shuts down
    (the retry reattaches); marked failed / success or cleared = a person's action: stop the paid job."""
    name = NAME.replace("pretrain", "prepare")
    operator = OrchardSageMakerProcessingOperator(
        task_id="prepare", config=processing_request(name), check_interval="1"
    )
    s3.put_object(Bucket=BUCKET, Key="code/processing/prepare.py", Body=INPUT_ERROR_SCRIPT)
    s3.put_object(Bucket=BUCKET, Key="code/processing/requirements.txt", Body=b"")
    operator.config["AppSpecification"]["ContainerArguments"].append("--slow")
    with pytest.raises(TaskDeferred):
        operator.execute({"ti": _TI()})
    _set_task_state(monkeypatch, state)
    operator.on_kill()
    final = (
        watch_states(lambda: processing_status(name), {"Stopped", "Failed", "Completed"}, timeout_s=10)
        if stopped
        else [processing_status(name)]
    )
    assert final[-1] == ("Stopped" if stopped else "InProgress")
    boto3.client("sagemaker").stop_processing_job(ProcessingJobName=name) if not stopped else None


def test_the_deferred_wait_stops_the_job_when_a_person_acts_and_fails_fast_when_it_vanished(s3):
    import asyncio

    from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger

    name = NAME.replace("pretrain", "prepare")
    start_processing(s3, name, slow=True)
    trigger = OrchardSageMakerTrigger(
        job_name=name, job_type="Processing", waiter_delay=1, waiter_max_attempts=5
    )
    assert trigger.serialize()[0] == "orchard.triggers.sagemaker_job.OrchardSageMakerTrigger"
    asyncio.run(trigger.on_kill())
    assert watch_states(lambda: processing_status(name), {"Stopped", "Failed", "Completed"})[-1] == "Stopped"

    # A job AWS does not know (the sandbox restarted, someone deleted it): the wait ends at the first poll.
    gone = OrchardSageMakerTrigger(
        job_name=name + "-gone", job_type="Processing", waiter_delay=1, waiter_max_attempts=1000
    )

    async def first_event():
        return await asyncio.wait_for(gone.run().__anext__(), timeout=20)

    try:
        event = asyncio.run(first_event())
    except Exception as error:  # noqa: BLE001 - the provider raises or yields an error event
        event = {"status": "error", "message": str(error)}
    else:
        event = event.payload
    print("vanished:", event)
    assert event["status"] != "success" and "ValidationException" in str(event)
