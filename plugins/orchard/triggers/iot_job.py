"""Deferrable wait on an IoT job's rollout: until the job ended or its rollout window closed.

QUEUED executions of offline devices never time out on AWS (timeoutConfig's timer starts at IN_PROGRESS:
https://docs.aws.amazon.com/iot/latest/apireference/API_TimeoutConfig.html), so a job with an offline
device stays IN_PROGRESS for good; the wait is bounded by the rollout window instead, and the operator
judges the rollout (orchard.operators.iot) on what the devices reported by then.

With `end_in_trigger` a rollout that meets the policy ends the task here (`orchard.triggers.task_end`,
issue 17.1): the operator's resume would only read the job's status and its devices' executions, push them
(`device_outcomes`) and return `judge_rollout`'s value; the trigger makes the same reads (in a thread, the
operator's sync client), logs each device's outcome as the operator does, and pushes the same values before
it yields a `TaskSuccessEvent`. A rollout under the policy (or canceled), a read or push that fails: the
task resumes, and its operator pushes the outcomes and fails with their words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from orchard.hooks.iot import IotHook
from orchard.triggers.task_end import EndsTaskOnSuccess

JOB_ENDED = ("COMPLETED", "CANCELED", "DELETION_IN_PROGRESS")


class IotJobCompletedTrigger(EndsTaskOnSuccess, BaseTrigger):
    """Polls DescribeJob every `waiter_delay` s until the job ended (COMPLETED, or CANCELED by its
    abortConfig) or `window_ends_at` (epoch seconds) passed; fires {status: success, job_id, job_status,
    window_closed}, or with `end_in_trigger` ends the task when the rollout met `min_success_percent`."""

    def __init__(
        self,
        job_id: str,
        waiter_delay: int,
        window_ends_at: float,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        end_in_trigger: bool = False,
        min_success_percent: float | str = 100,
        rollout_window_minutes: float | str = 60,
    ):
        super().__init__()
        self.job_id, self.waiter_delay, self.window_ends_at = job_id, waiter_delay, float(window_ends_at)
        self.aws_conn_id, self.region_name = aws_conn_id, region_name
        self.end_in_trigger = bool(end_in_trigger)
        # the operator's rollout policy, as it judges it (orchard.operators.iot.judge_rollout)
        self.min_success_percent, self.rollout_window_minutes = min_success_percent, rollout_window_minutes

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__name__}",
            {
                "job_id": self.job_id,
                "waiter_delay": self.waiter_delay,
                "window_ends_at": self.window_ends_at,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "end_in_trigger": self.end_in_trigger,
                "min_success_percent": self.min_success_percent,
                "rollout_window_minutes": self.rollout_window_minutes,
            },
        )

    async def waiting(self) -> AsyncIterator[TriggerEvent]:
        yield await self._job_end()

    async def _job_end(self) -> TriggerEvent:
        hook = IotHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await hook.get_async_conn() as client:
            while True:
                job = (await client.describe_job(jobId=self.job_id))["job"]
                ended = job["status"] in JOB_ENDED
                if ended or time.time() >= self.window_ends_at:
                    return TriggerEvent(
                        {
                            "status": "success",
                            "job_id": self.job_id,
                            "job_status": job["status"],
                            "window_closed": not ended,
                        }
                    )
                self.log.info(
                    "IoT job %s is %s: %s", self.job_id, job["status"], job.get("jobProcessDetails")
                )
                await asyncio.sleep(self.waiter_delay)

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        """The device outcomes and return value the resume would push, logged as it logs them, when the
        rollout met its policy; raises judge_rollout's words (the resume fails with them) when it did not."""
        from orchard.operators.iot import OUTCOMES_KEY, judge_rollout, log_outcomes, log_pending, read_rollout

        hook = IotHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        job_status, outcomes = read_rollout(hook, self.job_id)
        result = judge_rollout(
            self.job_id, job_status, outcomes, self.min_success_percent, self.rollout_window_minutes
        )
        log_outcomes(self.log, outcomes)
        log_pending(self.log, result)
        return {OUTCOMES_KEY: outcomes, "return_value": result}
