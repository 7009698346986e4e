"""The parse-cost anchor of benchmarks/dag_parse_time.py (issue 17.3): a 5-operator DAG written the way the
Amazon provider's system tests are (`tests/system/amazon/aws/example_batch.py`: module-level constants,
operators in a `with DAG(...)` block, one `chain()` at the end). Never run; only parsed, in the same run as
orchard's DAG files, so each file's cost is read as a ratio to what a provider-style DAG costs there.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.amazon.aws.operators.batch import BatchCreateComputeEnvironmentOperator, BatchOperator
from airflow.providers.amazon.aws.sensors.batch import (
    BatchComputeEnvironmentSensor,
    BatchJobQueueSensor,
    BatchSensor,
)
from airflow.sdk import DAG, chain

DAG_ID = "parse_anchor_batch"
ENV_ID = "anchor"
JOB_NAME = f"{ENV_ID}-test-job"
JOB_QUEUE = f"{ENV_ID}-test-job-queue"
JOB_DEFINITION = f"{ENV_ID}-test-job-definition"
COMPUTE_ENVIRONMENT = f"{ENV_ID}-test-compute-environment"
JOB_OVERRIDES: dict = {}

with DAG(
    dag_id=DAG_ID,
    schedule="@once",
    start_date=datetime(2021, 1, 1),
    tags=["example"],
    catchup=False,
) as dag:
    create_compute_environment = BatchCreateComputeEnvironmentOperator(
        task_id="create_compute_environment",
        compute_environment_name=COMPUTE_ENVIRONMENT,
        environment_type="MANAGED",
        state="ENABLED",
        compute_resources={
            "type": "FARGATE",
            "maxvCpus": 10,
            "securityGroupIds": ["sg-00000000"],
            "subnets": ["subnet-00000000"],
        },
    )

    wait_for_compute_environment_valid = BatchComputeEnvironmentSensor(
        task_id="wait_for_compute_environment_valid",
        compute_environment=COMPUTE_ENVIRONMENT,
    )

    wait_for_job_queue_valid = BatchJobQueueSensor(
        task_id="wait_for_job_queue_valid",
        job_queue=JOB_QUEUE,
    )

    submit_batch_job = BatchOperator(
        task_id="submit_batch_job",
        job_name=JOB_NAME,
        job_queue=JOB_QUEUE,
        job_definition=JOB_DEFINITION,
        container_overrides=JOB_OVERRIDES,
    )

    wait_for_batch_job = BatchSensor(
        task_id="wait_for_batch_job",
        job_id=submit_batch_job.output,
    )

    chain(
        create_compute_environment,
        wait_for_compute_environment_valid,
        wait_for_job_queue_valid,
        submit_batch_job,
        wait_for_batch_job,
    )
