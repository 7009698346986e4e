"""SageMakerProcessingOperator made retry-safe, with the job's log while it runs and a wait sized to MaxRuntime.

See `orchard.operators.sagemaker_job_retry` for what differs from the provider's operator and why.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator

from orchard.operators.sagemaker_job_retry import RetrySafeSageMakerJobMixin


class OrchardSageMakerProcessingOperator(RetrySafeSageMakerJobMixin, SageMakerProcessingOperator):
    """A deferrable processing job that a task retry finds (or re-runs once it failed) instead of duplicating.

    :param check_interval: seconds between polls; may be a template such as "{{ params.poll_seconds }}".
    Returns `{"Processing": <DescribeProcessingJob>}` as the provider's operator does.
    """

    kind = "Processing"
    log_group = "/aws/sagemaker/ProcessingJobs"
    template_fields = (*SageMakerProcessingOperator.template_fields, "check_interval")

    def describe_job(self, name: str) -> dict:
        return self.hook.describe_processing_job(name)

    def start_job(self) -> None:
        self.hook.create_processing_job(self.config, wait_for_completion=False)
