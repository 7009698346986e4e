"""The Amazon provider's own log fetching finds the sandbox's job output (what users see in task logs)."""

from __future__ import annotations

import json

import boto3

from tests.conftest import TEST_JOB_ROOT
from tests.local_aws.test_sagemaker import BUCKET, PYTORCH_IMAGE, ROLE, tarball


def test_sagemaker_hook_print_log_shows_the_training_jobs_lines(aws, capfd):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/train/data.csv", Body=b"a\n")
    s3.put_object(
        Bucket=BUCKET,
        Key="code/sourcedir.tar.gz",
        Body=tarball(TEST_JOB_ROOT / "tiny_training", ["train.py", "requirements.txt"]),
    )
    config = {
        "TrainingJobName": "print-log",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": PYTORCH_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
            "epochs": "2",
            "seconds-per-epoch": "1",
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }

    SageMakerHook(aws_conn_id="aws_default").create_training_job(
        config, wait_for_completion=True, print_log=True, check_interval=1
    )

    hook_log = capfd.readouterr().out  # Airflow's structlog writes the hook's lines to stdout
    assert "epoch=1 loss=0.5000" in hook_log
