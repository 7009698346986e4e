"""Breaks one integrity rule: top-level work at parse time (beyond the parse budget)."""

from __future__ import annotations

import time

from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import Param, dag

from orchard import naming


def list_label_classes() -> list[str]:
    """Stands in for a boto3 call at parse time: ~200 ms of network on every parse."""
    time.sleep(0.2)
    return ["apple", "pear"]


LABEL_CLASSES = list_label_classes()


@dag(
    schedule=None,
    doc_md="Sample for the integrity tests: one Batch job.",
    tags=["sample"],
    default_args={"owner": "ml-platform", "retries": 2, "retry_exponential_backoff": 2.0},
    params={"label_class": Param("apple", type="string", enum=LABEL_CLASSES)},
    user_defined_macros=naming.MACROS,
)
def bad_slow_top_level():
    BatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_definition="orchard-sample",
        job_queue="orchard-cpu",
        deferrable=True,
    )


bad_slow_top_level()
