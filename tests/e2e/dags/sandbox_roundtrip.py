"""A small DAG that proves the harness: deferrable Batch and SageMaker training jobs through the sandbox.

Not a pipeline (those live in dags/): it uses the test job folders of tests/local_aws/jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
from airflow.sdk import chain, dag, task

from orchard import naming

JOBS = Path(__file__).resolve().parents[2] / "local_aws" / "jobs"
BUCKET = "roundtrip"
QUEUE = "roundtrip-queue"
DEFINITION = "roundtrip-hello"
ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"
JOB_ROLE = "arn:aws:iam::123456789012:role/orchard-batch-job"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"


@dag(
    schedule=None,
    catchup=False,
    tags=["test"],
    default_args={"owner": "orchard-platform", "retries": 0},
    user_defined_macros=naming.MACROS,
    doc_md=__doc__,
)
def sandbox_roundtrip():
    @task
    def create_resources() -> None:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from tests.local_aws.training_jobs import tarball

        s3, batch, iam = (
            AwsBaseHook(aws_conn_id="aws_default", client_type=name).conn for name in ("s3", "batch", "iam")
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/data.csv", Body=b"a\nb\n")
        source = tarball(JOBS / "tiny_training", ["train.py", "requirements.txt"])
        s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=source)
        role = iam.create_role(RoleName="roundtrip-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName="roundtrip-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
        )
        batch.create_job_queue(
            jobQueueName=QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}
            ],
        )
        batch.register_job_definition(
            jobDefinitionName=DEFINITION,
            type="container",
            containerProperties={
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/hello-batch:1.0",
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
                "environment": [{"name": "OUTPUT_BUCKET", "value": BUCKET}],
                "jobRoleArn": JOB_ROLE,  # the job's own credentials (it writes to S3)
            },
        )

    batch_job = BatchOperator(
        task_id="batch_job",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_queue=QUEUE,
        job_definition=DEFINITION,
        container_overrides={
            "environment": [{"name": "OUTPUT_KEY", "value": "batch/{{ run_id | replace(':', '-') }}"}]
        },
        deferrable=True,
        awslogs_enabled=True,
        poll_interval=1,
    )

    train = SageMakerTrainingOperator(
        task_id="train",
        config={
            "TrainingJobName": "{{ aws_name('sagemaker_training_job', dag.dag_id, run_id) }}",
            "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingImage": PYTORCH_IMAGE, "TrainingInputMode": "File"},
            "HyperParameters": {
                "sagemaker_program": json.dumps("train.py"),
                "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/sourcedir.tar.gz"),
                "epochs": "2",
                # Long enough that the operator's first describe finds it InProgress and defers, even on a
                # busy machine (a job already Completed by then returns without deferring: CI saw that).
                "seconds-per-epoch": "3",
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
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
        deferrable=True,
        check_interval=1,
        max_ingestion_time=600,
    )

    chain(create_resources(), batch_job, train)


sandbox_roundtrip()
