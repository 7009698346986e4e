"""Breaks one integrity rule: a Param with no JSON-schema type."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import Param, dag

from orchard import naming


@dag(
    schedule=None,
    doc_md="Sample for the integrity tests: one Batch job.",
    tags=["sample"],
    default_args={"owner": "ml-platform", "retries": 2, "retry_exponential_backoff": 2.0},
    params={"epochs": Param(1, type="integer", minimum=1), "queue": Param("orchard-cpu")},
    user_defined_macros=naming.MACROS,
)
def bad_untyped_param():
    BatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_definition="orchard-sample",
        job_queue="orchard-cpu",
        deferrable=True,
    )


bad_untyped_param()
