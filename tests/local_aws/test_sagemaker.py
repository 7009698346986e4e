"""SageMaker jobs in the sandbox: script mode, the training contract, outputs in S3, failures, stops."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest

from local_aws.s3io import tar_gz
from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.polling import watch_states
from tests.local_aws.training_jobs import BUCKET, ROLE, SKLEARN_IMAGE, start_training, training_request


def wait_training(name: str) -> tuple[dict, list[str]]:
    sagemaker = boto3.client("sagemaker")
    describe = lambda: sagemaker.describe_training_job(TrainingJobName=name)  # noqa: E731
    seen = watch_states(
        lambda: f"{describe()['TrainingJobStatus']}/{describe()['SecondaryStatus']}",
        {"Completed/Completed", "Failed/Failed", "Stopped/Stopped"},
    )
    return describe(), seen


def test_script_mode_training_job_lands_model_tar_gz_in_s3(s3):
    start_training("tiny-train")

    job, seen = wait_training("tiny-train")

    assert job["TrainingJobStatus"] == "Completed"
    assert "InProgress/Training" in seen and seen[-1] == "Completed/Completed"
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/tiny-train/output/model.tar.gz"
    body = s3.get_object(Bucket=BUCKET, Key="models/tiny-train/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        model = json.load(archive.extractfile("model.json"))
    assert model == {"rows": 3, "epochs": 3}  # it read its channel and got its hyperparameters
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]} == {"train:loss": 0.3333}
    assert job["BillableTimeInSeconds"] >= 1
    checkpoints = s3.list_objects_v2(Bucket=BUCKET, Prefix="checkpoints/tiny-train/")["KeyCount"]
    assert checkpoints == 3


def test_training_logs_are_in_the_stream_sagemaker_print_log_reads(s3):
    start_training("logged-train")
    wait_training("logged-train")

    logs = boto3.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="logged-train/"
    )["logStreams"]
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"]
    )["events"]
    assert streams[0]["logStreamName"].startswith("logged-train/algo-1-")
    assert "epoch=2 loss=0.3333" in [e["message"] for e in events]


def test_a_failing_training_job_reports_the_failure_file_as_reason(s3):
    start_training("failing-train", fail=True)

    job, _ = wait_training("failing-train")

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ValueError: asked to fail"
    assert "ModelArtifacts" not in job


def test_a_channel_that_cannot_be_downloaded_fails_the_job_with_a_reason(s3):
    request = training_request("bad-channel")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = "s3://no-such-bucket/data"
    boto3.client("sagemaker").create_training_job(**request)

    job, seen = wait_training("bad-channel")

    assert seen[-1] == "Failed/Failed"
    assert job["FailureReason"].startswith("ClientError: Data download failed")
    assert "NoSuchBucket" in job["FailureReason"]


def test_a_job_resumes_from_the_checkpoints_of_an_earlier_one(s3):
    shared = f"s3://{BUCKET}/checkpoints/shared"
    start_training("first-attempt", checkpoints=shared)
    wait_training("first-attempt")
    start_training("second-attempt", checkpoints=shared)
    wait_training("second-attempt")

    logs = boto3.client("logs")
    stream = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="second-attempt/"
    )["logStreams"][0]["logStreamName"]
    lines = [
        e["message"]
        for e in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)[
            "events"
        ]
        if not e["message"].startswith("[sandbox]")  # the image's description precedes the job's output
    ]
    assert lines[0] == "resuming from ['epoch-0.ckpt', 'epoch-1.ckpt', 'epoch-2.ckpt']"


def test_a_job_name_can_be_used_once(s3):
    start_training("once")
    with pytest.raises(boto3.client("sagemaker").exceptions.ResourceInUse):
        start_training("once")


def test_stop_training_job_stops_the_running_process(s3):
    sagemaker = boto3.client("sagemaker")
    start_training("stopped", seconds_per_epoch=60)
    watch_states(
        lambda: sagemaker.describe_training_job(TrainingJobName="stopped")["SecondaryStatus"], {"Training"}
    )

    sagemaker.stop_training_job(TrainingJobName="stopped")

    job, seen = wait_training("stopped")
    assert seen[-1] == "Stopped/Stopped"
    assert job["TrainingTimeInSeconds"] < 60


def test_processing_job_runs_its_script_and_uploads_outputs(s3):
    s3.put_object(Bucket=BUCKET, Key="raw/a.txt", Body=b"1\n2\n")
    s3.put_object(Bucket=BUCKET, Key="raw/b.txt", Body=b"1\n")
    s3.upload_file(str(TEST_JOB_ROOT / "tiny_processing" / "prepare.py"), BUCKET, "code/prepare.py")
    s3.put_object(Bucket=BUCKET, Key="code/requirements.txt", Body=b"")
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_processing_job(
        ProcessingJobName="count-lines",
        RoleArn=ROLE,
        AppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/prepare.py"],
            "ContainerArguments": ["/opt/ml/processing/input/raw", "/opt/ml/processing/output"],
        },
        ProcessingInputs=[
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "raw",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/raw",
                    "LocalPath": "/opt/ml/processing/input/raw",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "counts",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/counted",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )

    seen = watch_states(
        lambda: sagemaker.describe_processing_job(ProcessingJobName="count-lines")["ProcessingJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )

    assert seen[-1] == "Completed", sagemaker.describe_processing_job(ProcessingJobName="count-lines").get(
        "FailureReason"
    )
    counts = json.loads(s3.get_object(Bucket=BUCKET, Key="counted/counts.json")["Body"].read())
    assert counts == {"a.txt": 2, "b.txt": 1}


def test_transform_job_applies_the_models_inference_handler(s3):
    model_data = tar_gz({"model.json": json.dumps({"name": "echo-v1"}).encode()})
    s3.put_object(Bucket=BUCKET, Key="models/echo/model.tar.gz", Body=model_data)
    s3.put_object(Bucket=BUCKET, Key="batch-in/request.json", Body=json.dumps({"items": [1, 2, 3]}).encode())
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="echo",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/echo-model:1.0",
            "ModelDataUrl": f"s3://{BUCKET}/models/echo/model.tar.gz",
        },
    )
    sagemaker.create_transform_job(
        TransformJobName="echo-batch",
        ModelName="echo",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch-in"}},
            "ContentType": "application/json",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch-out", "Accept": "application/json"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )

    seen = watch_states(
        lambda: sagemaker.describe_transform_job(TransformJobName="echo-batch")["TransformJobStatus"],
        {"Completed", "Failed", "Stopped"},
    )

    assert seen[-1] == "Completed", sagemaker.describe_transform_job(TransformJobName="echo-batch").get(
        "FailureReason"
    )
    answer = json.loads(s3.get_object(Bucket=BUCKET, Key="batch-out/request.json.out")["Body"].read())
    assert answer == {"items": 3, "model": "echo-v1"}


def test_a_multi_instance_job_runs_as_one_host_and_reports_billable_time_per_instance(s3):
    request = training_request("two-instances")
    request["ResourceConfig"]["InstanceCount"] = 2
    boto3.client("sagemaker").create_training_job(**request)

    job, seen = wait_training("two-instances")

    assert seen[-1] == "Completed/Completed"
    # AWS: "Multiply BillableTimeInSeconds by the number of instances (InstanceCount) ... to get the total".
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]


def test_training_start_time_and_the_bill_begin_before_the_download(s3, monkeypatch):
    """AWS's TrainingStartTime is when the job starts on its instances, before it downloads its data and
    container ("The start time in CloudWatch Logs might be later than this time. The difference is due to
    the time it takes to download the training data", DescribeTrainingJob); the bill runs from it."""
    import time

    from local_aws.sagemaker import SandboxTrainingJob

    download = SandboxTrainingJob._download_inputs
    monkeypatch.setattr(SandboxTrainingJob, "_download_inputs", lambda job: time.sleep(1.5) or download(job))
    start_training("billed-from-download")

    job, _ = wait_training("billed-from-download")

    transitions = {t["Status"]: t for t in job["SecondaryStatusTransitions"]}
    downloading = transitions["Downloading"]
    assert downloading["StartTime"] <= job["TrainingStartTime"]
    assert (downloading["EndTime"] - job["TrainingStartTime"]).total_seconds() >= 1.4  # the whole download
    billed = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert abs(job["BillableTimeInSeconds"] - max(1, int(billed))) <= 1
