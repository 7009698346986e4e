"""Sample DAG that keeps every integrity rule; tests/dags/test_dag_integrity.py proves the rules on it.

A sample, not a pipeline: it lives outside dags/, so Airflow never loads it. Each bad_*.py next to it
breaks exactly one rule.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, dag, task

from orchard import naming

DOC_MD = """
### Sample: train and evaluate on AWS Batch
Waits for the input archive, trains, then evaluates, each as a Batch job.
- **Inputs**: `params.input_uri` (zip in S3). **Outputs**: the model in the job's output prefix.
- **Cost**: two short Batch jobs. **IAM**: `include/iam/good_sample.json`.
"""


@dag(
    schedule=None,
    doc_md=DOC_MD,
    tags=["sample"],
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "input_uri": Param("s3://orchard-data/sample/input.zip", type="string", pattern=r"^s3://"),
        "epochs": Param(1, type="integer", minimum=1, maximum=50),
        "job_queue": Param("orchard-cpu", type="string", enum=["orchard-cpu", "orchard-gpu"]),
    },
    user_defined_macros=naming.MACROS,
)
def good_sample():
    wait_for_input = S3KeySensor(
        task_id="wait_for_input", bucket_key="{{ params.input_uri }}", deferrable=True
    )

    train = BatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_definition="orchard-sample",
        job_queue="{{ params.job_queue }}",
        container_overrides={"command": ["python", "train.py", "--epochs", "{{ params.epochs }}"]},
        deferrable=True,
        execution_timeout=timedelta(hours=2),
    )

    @task
    def evaluation_job_name(**context) -> str:
        return naming.resource_name("batch_job", context["dag"].dag_id, context["run_id"], suffix="eval")

    evaluate = BatchOperator(
        task_id="evaluate",
        job_name=evaluation_job_name(),  # computed by a task: an XComArg
        job_definition="orchard-sample",
        job_queue="{{ params.job_queue }}",
        container_overrides={"command": ["python", "evaluate.py"]},
        deferrable=True,
        execution_timeout=timedelta(hours=1),
    )

    wait_for_input >> train >> evaluate


good_sample()
