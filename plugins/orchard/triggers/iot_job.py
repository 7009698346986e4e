"""Deferrable wait on an IoT job's rollout: until the job ended or its rollout window closed.

QUEUED executions of offline devices never time out on AWS (timeoutConfig's timer starts at IN_PROGRESS:
https://docs.aws.amazon.com/iot/latest/apireference/API_TimeoutConfig.html), so a job with an offline
device stays IN_PROGRESS for good; the wait is bounded by the rollout window instead, and the operator
judges the rollout (orchard.operators.iot) on what the devices reported by then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from orchard.hooks.iot import IotHook

JOB_ENDED = ("COMPLETED", "CANCELED", "DELETION_IN_PROGRESS")


class IotJobCompletedTrigger(BaseTrigger):
    """Polls DescribeJob every `waiter_delay` s until the job ended (COMPLETED, or CANCELED by its
    abortConfig) or `window_ends_at` (epoch seconds) passed; fires {status: success, job_id, job_status,
    window_closed}."""

    def __init__(
        self,
        job_id: str,
        waiter_delay: int,
        window_ends_at: float,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
    ):
        super().__init__()
        self.job_id, self.waiter_delay, self.window_ends_at = job_id, waiter_delay, float(window_ends_at)
        self.aws_conn_id, self.region_name = aws_conn_id, region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__name__}",
            {
                "job_id": self.job_id,
                "waiter_delay": self.waiter_delay,
                "window_ends_at": self.window_ends_at,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = IotHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await hook.get_async_conn() as client:
            while True:
                job = (await client.describe_job(jobId=self.job_id))["job"]
                ended = job["status"] in JOB_ENDED
                if ended or time.time() >= self.window_ends_at:
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "job_id": self.job_id,
                            "job_status": job["status"],
                            "window_closed": not ended,
                        }
                    )
                    return
                self.log.info(
                    "IoT job %s is %s: %s", self.job_id, job["status"], job.get("jobProcessDetails")
                )
                await asyncio.sleep(self.waiter_delay)
