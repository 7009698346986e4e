"""Deferrable wait on an IoT job: every targeted device's execution has ended (orchard's `job_completed` waiter)."""

from __future__ import annotations

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger

from orchard.hooks.iot import IotHook


class IotJobCompletedTrigger(AwsBaseWaiterTrigger):
    """Polls DescribeJob until COMPLETED (all executions terminal) or CANCELED; counts per state in the log."""

    aws_hook_class = IotHook

    def __init__(self, job_id: str, waiter_delay: int, waiter_max_attempts: int,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs):
        super().__init__(
            serialized_fields={"job_id": job_id},
            waiter_name="job_completed",
            waiter_args={"jobId": job_id},
            failure_message=f"IoT job {job_id} did not complete",
            status_message=f"IoT job {job_id} is still running on its devices",
            status_queries=["job.status", "job.jobProcessDetails"],
            return_key="job_id",
            return_value=job_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            **kwargs,
        )
