"""Breaks one integrity rule: a Batch job that waits on a worker slot (deferrable left False)."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import Param, dag

from orchard import naming


@dag(
    schedule=None,
    doc_md="Sample for the integrity tests: one Batch job.",
    tags=["sample"],
    default_args={"owner": "ml-platform", "retries": 2, "retry_exponential_backoff": 2.0},
    params={"epochs": Param(1, type="integer", minimum=1)},
    user_defined_macros=naming.MACROS,
)
def bad_batch_not_deferrable():
    BatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_definition="orchard-sample",
        job_queue="orchard-cpu",
    )


bad_batch_not_deferrable()
