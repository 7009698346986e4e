"""SageMakerTrainingOperator made retry-safe, with the job's log while it runs and a wait sized to MaxRuntime.

See `orchard.operators.sagemaker_job_retry` for what differs from the provider's operator and why.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

from orchard.operators.sagemaker_job_retry import RetrySafeSageMakerJobMixin


class OrchardSageMakerTrainingOperator(RetrySafeSageMakerJobMixin, SageMakerTrainingOperator):
    """A deferrable training job that a task retry finds (or resumes) instead of duplicating.

    :param check_interval: seconds between polls; may be a template such as "{{ params.poll_seconds }}".
    Returns `{"Training": <DescribeTrainingJob>}` as the provider's operator does.
    """

    kind = "Training"
    log_group = "/aws/sagemaker/TrainingJobs"
    restart_note = ", which resumes from the shared checkpoints"
    template_fields = (*SageMakerTrainingOperator.template_fields, "check_interval")

    def __init__(self, **kwargs: Any):
        # The mixin looks for this task's job by its attempt names; the provider's own check would refuse it.
        super().__init__(check_if_job_exists=False, **kwargs)

    def describe_job(self, name: str) -> dict:
        return self.hook.describe_training_job(name)

    def start_job(self) -> None:
        # The client call, not SageMakerHook.create_training_job: the hook first HEADs each input bucket,
        # which needs s3:ListBucket on the whole bucket; the pipeline's role may list only its own prefixes
        # (include/iam/<dag_id>.json), and SageMaker checks the inputs itself when the job starts.
        self.hook.conn.create_training_job(**self.config)
