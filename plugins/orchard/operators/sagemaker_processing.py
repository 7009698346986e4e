"""SageMakerProcessingOperator made retry-safe, with the job log after deferral and a wait sized to MaxRuntime.

See `orchard.operators.sagemaker_job_retry` for what differs from the provider's operator and why.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, serialize

from orchard.operators.sagemaker_job_retry import (
    RUNNING_STATES,
    attempt_name,
    check_outcome,
    latest_attempt,
    print_job_log,
    remember_task_instance,
    stop_on_a_persons_action,
    wait_budget,
)
from orchard.triggers.sagemaker_job import OrchardSageMakerTrigger

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


class OrchardSageMakerProcessingOperator(SageMakerProcessingOperator):
    """A deferrable processing job that a task retry finds (or re-runs once it failed) instead of duplicating.

    :param check_interval: seconds between polls; may be a template such as "{{ params.poll_seconds }}".
    Returns `{"Processing": <DescribeProcessingJob>}` as the provider's operator does.
    """

    template_fields = (*SageMakerProcessingOperator.template_fields, "check_interval")

    def __init__(self, *, check_interval: int | str = 60, **kwargs: Any):
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("print_log", True)
        super().__init__(check_interval=check_interval, **kwargs)  # type: ignore[arg-type]

    def execute(self, context: Any) -> dict:
        self.check_interval = int(self.check_interval)
        remember_task_instance(self, context)
        self.preprocess_config()
        base = self.config["ProcessingJobName"]
        attempt, description = latest_attempt(base, self.hook.describe_processing_job)
        if description and description["ProcessingJobStatus"] == "Completed":
            self.log.info(
                "processing job %s already completed (an earlier try started it)",
                description["ProcessingJobName"],
            )
            return {"Processing": serialize(description)}
        if description and description["ProcessingJobStatus"] in RUNNING_STATES:
            self.log.info(
                "waiting on processing job %s, started by an earlier try", description["ProcessingJobName"]
            )
            self._orchard_job = description["ProcessingJobName"]
            return self._wait(description["ProcessingJobName"])
        self.config["ProcessingJobName"] = attempt_name(base, attempt + 1)
        self._orchard_job = self.config["ProcessingJobName"]
        self.hook.create_processing_job(self.config, wait_for_completion=False)
        self.log.info("started SageMaker processing job %s", self.config["ProcessingJobName"])
        return self._wait(self.config["ProcessingJobName"])

    def _wait(self, job_name: str) -> dict:
        if not (self.deferrable and self.wait_for_completion):
            return {"Processing": serialize(self.hook.describe_processing_job(job_name))}
        attempts, seconds = wait_budget(self.config.get("StoppingCondition"), self.check_interval)
        self.defer(
            timeout=datetime.timedelta(seconds=seconds),
            trigger=OrchardSageMakerTrigger(
                job_name=job_name,
                job_type="Processing",
                waiter_delay=self.check_interval,
                waiter_max_attempts=attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
        )
        return {}  # not reached: defer() raises

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        job_name = (event or {}).get("job_name") or self.config.get("ProcessingJobName", "")
        if self.print_log and job_name:
            print_job_log(self, PROCESSING_LOG_GROUP, job_name)
        if job_name:  # Failed with an input error: InputError; Stopped: a failure (the waiter says success)
            check_outcome("Processing", self.hook.describe_processing_job(job_name))
        return super().execute_complete(context, event)

    def on_kill(self) -> None:
        """Stop the job on a person's action, never on a worker's graceful shutdown."""
        stop_on_a_persons_action(self, "Processing")
