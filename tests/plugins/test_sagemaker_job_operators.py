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
from tests.local_aws.training_jobs import BUCKET, ROLE, SKLEARN_IMAGE, start_training, training_request, upload_training_inputs

NAME = "aerial-pretraining-manual-20261121t100000-pretrain-0123456789"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    upload_training_inputs(client)
    return client


def training_operator(**kwargs) -> OrchardSageMakerTrainingOperator:
    return OrchardSageMakerTrainingOperator(task_id="pretrain", config=training_request(NAME, **kwargs), check_interval="5")


def wait_training(name: str) -> str:
    sagemaker = boto3.client("sagemaker")
    return watch_states(lambda: sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
                        {"Completed", "Failed", "Stopped"})[-1]


def job_names() -> list[str]:
    return sorted(j["TrainingJobName"] for j in boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"])


def test_attempt_names_stay_legal_and_distinct():
    assert attempt_name(NAME, 1) == NAME
    assert attempt_name(NAME, 2).endswith("-r2") and len(attempt_name(NAME, 12)) <= 63
    assert len({attempt_name(NAME, n) for n in range(1, 20)}) == 19


def test_wait_is_sized_from_max_runtime_or_spot_max_wait():
    assert wait_budget({"MaxRuntimeInSeconds": 86400}, 60) == (math.ceil((86400 + START_AND_UPLOAD_MARGIN_S) / 60) + 1, 86400 + START_AND_UPLOAD_MARGIN_S)
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
            events = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{NAME}/")["events"]
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
    events = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{second}/")
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
        training_operator().execute_complete({}, {"status": "failed", "job_name": NAME, "message": "asked to fail"})
    assert f"[{NAME}] epoch=0 loss=1.0000" in "".join(capfd.readouterr())


def processing_request(name: str) -> dict:
    code = "/opt/ml/processing/input/code"
    return {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": ["python3", f"{code}/prepare.py"],
                             "ContainerArguments": ["/opt/ml/processing/input/raw", "/opt/ml/processing/output"]},
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": f"s3://{BUCKET}/code/processing", "LocalPath": code, "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "raw", "S3Input": {"S3Uri": f"s3://{BUCKET}/data/train", "LocalPath": "/opt/ml/processing/input/raw", "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        ],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {"S3Uri": f"s3://{BUCKET}/counted", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_processing_retry_finds_the_job_then_reruns_only_after_a_failure(s3):
    from tests.conftest import TEST_JOB_ROOT

    s3.upload_file(str(TEST_JOB_ROOT / "tiny_processing" / "prepare.py"), BUCKET, "code/processing/prepare.py")
    s3.put_object(Bucket=BUCKET, Key="code/processing/requirements.txt", Body=b"")
    sagemaker = boto3.client("sagemaker")
    name = NAME.replace("pretrain", "prepare")
    operator = OrchardSageMakerProcessingOperator(task_id="prepare", config=processing_request(name), check_interval="2")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert deferred.value.trigger.job_name == name
    status = lambda job: sagemaker.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"]  # noqa: E731
    assert watch_states(lambda: status(name), {"Completed", "Failed", "Stopped"})[-1] == "Completed"

    retry = OrchardSageMakerProcessingOperator(task_id="prepare", config=processing_request(name), check_interval="2")
    assert retry.execute({})["Processing"]["ProcessingJobName"] == name
    assert [j["ProcessingJobName"] for j in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]] == [name]
