"""Wait, in the triggerer, for a Ground Truth labeling job to end."""

from __future__ import annotations

from orchard.compat import AwsBaseWaiterTrigger
from orchard.hooks.labeling_job import LabelingJobHook


class SageMakerLabelingJobTrigger(AwsBaseWaiterTrigger):
    aws_hook_class = LabelingJobHook

    def __init__(
        self,
        *,
        job_name: str,
        waiter_delay: int,
        waiter_max_attempts: int,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ):
        super().__init__(
            serialized_fields={"job_name": job_name},
            waiter_name="labeling_job_complete",
            waiter_args={"LabelingJobName": job_name},
            failure_message=f"Labeling job {job_name} did not complete",
            status_message=f"Labeling job {job_name} status",
            status_queries=["LabelingJobStatus", "LabelCounters", "FailureReason"],
            return_key="job_name",
            return_value=job_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
