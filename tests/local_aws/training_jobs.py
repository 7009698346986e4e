"""A SageMaker training job as the sandbox tests submit it: the tiny script-mode job of tests/local_aws/jobs."""

from __future__ import annotations

import io
import json
import tarfile

import boto3

from tests.conftest import TEST_JOB_ROOT

PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"
BUCKET = "ml-bucket"


def tarball(folder, names) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in names:
            archive.add(folder / name, arcname=name)
    return buffer.getvalue()


def training_request(
    name: str, fail: bool = False, checkpoints: str | None = None, seconds_per_epoch: int = 0
) -> dict:
    return dict(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={
            "TrainingImage": PYTORCH_IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}],
        },
        HyperParameters={  # as the SageMaker Python SDK sends them: JSON-encoded
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
            "epochs": "3",
            "fail": json.dumps("yes" if fail else "no"),
            "seconds-per-epoch": str(seconds_per_epoch),
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        CheckpointConfig={"S3Uri": checkpoints or f"s3://{BUCKET}/checkpoints/{name}"},
    )


def start_training(name: str, **options) -> None:
    boto3.client("sagemaker").create_training_job(**training_request(name, **options))


def upload_training_inputs(s3) -> None:
    """The training channel and the job's sourcedir.tar.gz, in a new bucket."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/train/data.csv", Body=b"a\nb\nc\n")
    source = tarball(TEST_JOB_ROOT / "tiny_training", ["train.py", "requirements.txt"])
    s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=source)
