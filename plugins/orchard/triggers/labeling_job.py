"""Wait, in the triggerer, for a Ground Truth labeling job to end.

With `end_in_trigger` a Completed job ends the task here (`orchard.triggers.task_end`, issue 17.1): the
operator's resume would only describe the job and return `labeling_result` of it; the trigger makes the same
call (in a thread, the operator's sync client) and pushes that value before it yields a `TaskSuccessEvent`.
Any other end (Failed, Stopped, the wait's timeout, a describe or push that fails) resumes the task, whose
operator words it.
"""

from __future__ import annotations

from typing import Any

from airflow.triggers.base import TriggerEvent

from orchard.compat import AwsBaseWaiterTrigger
from orchard.hooks.labeling_job import LabelingJobHook
from orchard.triggers.task_end import EndsTaskOnSuccess


def labeling_result(client: Any, job_name: str) -> dict[str, Any]:
    """The labeling task's return value: the Completed job's output manifest, label attribute and counters;
    any other status raises with SageMaker's reason."""
    job = client.describe_labeling_job(LabelingJobName=job_name)
    if job["LabelingJobStatus"] != "Completed":
        raise RuntimeError(
            f"labeling job {job_name} ended {job['LabelingJobStatus']}: {job.get('FailureReason', '')}"
        )
    return {
        "job_name": job_name,
        "status": job["LabelingJobStatus"],
        "output_manifest": job["LabelingJobOutput"]["OutputDatasetS3Uri"],
        "label_attribute": job["LabelAttributeName"],
        "counters": job["LabelCounters"],
    }


class SageMakerLabelingJobTrigger(EndsTaskOnSuccess, AwsBaseWaiterTrigger):
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
        end_in_trigger: bool = False,
    ):
        self.end_in_trigger = bool(end_in_trigger)
        super().__init__(
            serialized_fields={"job_name": job_name, "end_in_trigger": self.end_in_trigger},
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

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        return {"return_value": labeling_result(self.hook().conn, event.payload["job_name"])}
