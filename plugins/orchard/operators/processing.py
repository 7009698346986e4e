"""A SageMaker processing job whose retry waits on the job its first try started.

The provider's SageMakerProcessingOperator offers, for a job name that exists, "fail" or "timestamp" (a
second, renamed job): neither lets a retried task pick up its own job. This subclass does: with orchard's
deterministic names (orchard.naming), an existing job is this run's.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, serialize
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import ClientError


class ResumableProcessingOperator(SageMakerProcessingOperator):
    """Also: `check_interval` is templated (a poll delay from params), and the number of polls is sized from
    the job's own StoppingCondition.MaxRuntimeInSeconds."""

    template_fields = (*SageMakerProcessingOperator.template_fields, "check_interval")

    def execute(self, context: Any) -> dict:
        self.check_interval = int(self.check_interval)
        max_runtime = int((self.config.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
        self.max_attempts = max_runtime // max(1, self.check_interval) + 10
        name = self.config["ProcessingJobName"]
        try:
            job = self.hook.describe_processing_job(name)
        except ClientError:  # ValidationException: no such job yet
            return super().execute(context)
        status = job["ProcessingJobStatus"]
        self.log.info("Processing job %s exists (%s): this run's own, waiting on it", name, status)
        if status in self.hook.processing_job_failed_states:
            raise AirflowException(f"SageMaker job failed because {job.get('FailureReason')}")
        if status != "Completed":
            from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

            self.defer(
                trigger=SageMakerTrigger(job_name=name, job_type="Processing", waiter_delay=self.check_interval,
                                         waiter_max_attempts=self.max_attempts, aws_conn_id=self.aws_conn_id,
                                         region_name=self.region_name),
                method_name="execute_complete",
            )
        self.serialized_job = serialize(job)
        return {"Processing": self.serialized_job}
