"""Breaks one integrity rule: no tags."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import Param, dag

from orchard import naming


@dag(
    schedule=None,
    doc_md="Sample for the integrity tests: one Batch job.",
    default_args={"owner": "ml-platform", "retries": 2, "retry_exponential_backoff": 2.0},
    params={"epochs": Param(1, type="integer", minimum=1)},
    user_defined_macros=naming.MACROS,
)
def bad_missing_tags():
    BatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_definition="orchard-sample",
        job_queue="orchard-cpu",
        deferrable=True,
    )


bad_missing_tags()
