"""Breaks one integrity rule: a literal Batch job name, not one from orchard.naming."""

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
def bad_literal_job_name():
    BatchOperator(
        task_id="train",
        job_name="train-pose",
        job_definition="orchard-sample",
        job_queue="orchard-cpu",
        deferrable=True,
    )


bad_literal_job_name()
