"""Wait, in the triggerer, for an AWS Batch job to end, failing fast when the job no longer exists.

The provider's `BatchJobTrigger` waits with the `batch_job_complete` waiter, whose acceptors never match an
empty `jobs` list: a job id that DescribeJobs no longer returns (the sandbox restarted; on AWS, a job past
its retention, or an id from another account/Region) logs "not ready yet: []" every poll until
`waiter_max_attempts`, hours later. AWS's DescribeJobs answers an unknown id with an empty list, not an error
("DescribeJobs - AWS Batch API Reference", https://docs.aws.amazon.com/batch/latest/APIReference/
API_DescribeJobs.html): this trigger treats `VANISHED_POLLS` empty answers in a row as a failure naming the
job, and reports FAILED jobs with their statusReason and container exit code.

With `stream_logs`, each poll also logs the job's new CloudWatch Logs lines (`orchard.triggers.job_logs`):
they reach the task log while the task is deferred, and the final event says `log_printed` so the operator
does not print them again.

With `end_in_trigger` a SUCCEEDED job ends the task here (`orchard.triggers.task_end`): the operator's resume
would only push the job id (its return value) and the provider's CloudWatch link, which this trigger
pushes, the same values, before it yields a `TaskSuccessEvent`. A failure, a vanished job, a timeout, or a
push that fails still resume the task, whose operator words the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from orchard.triggers.job_logs import (
    FINAL_PAGES,
    PAGES_PER_POLL,
    JobLogTail,
    batch_log_group,
    batch_log_streams,
)
from orchard.triggers.task_end import end_with_xcoms, warm_the_supervisors_api

VANISHED_POLLS = 3  # consecutive empty DescribeJobs answers before the job counts as gone
SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"


def exit_code_of(job: dict[str, Any]) -> int | None:
    """The container's exit code of a finished job (its last attempt's), if it has one."""
    code = job.get("container", {}).get("exitCode")
    if code is None and job.get("attempts"):
        code = job["attempts"][-1].get("container", {}).get("exitCode")
    return code


class BatchJobWaitTrigger(BaseTrigger):
    def __init__(
        self,
        *,
        job_id: str,
        job_name: str = "",
        waiter_delay: int,
        waiter_max_attempts: int,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        vanished_polls: int = VANISHED_POLLS,
        stream_logs: bool = False,
        end_in_trigger: bool = False,
        cloudwatch_link: dict[str, str] | None = None,
    ):
        super().__init__()
        self.job_id, self.job_name = job_id, job_name
        self.waiter_delay, self.waiter_max_attempts = int(waiter_delay), int(waiter_max_attempts)
        self.aws_conn_id, self.region_name = aws_conn_id, region_name
        self.vanished_polls = int(vanished_polls)
        self.stream_logs = bool(stream_logs)
        self.end_in_trigger = bool(end_in_trigger)
        # region_name and aws_domain of the CloudWatchEventsLink XCom, as the operator's hook knows them
        self.cloudwatch_link = cloudwatch_link

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "job_name": self.job_name,
                "waiter_delay": self.waiter_delay,
                "waiter_max_attempts": self.waiter_max_attempts,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "vanished_polls": self.vanished_polls,
                "stream_logs": self.stream_logs,
                "end_in_trigger": self.end_in_trigger,
                "cloudwatch_link": self.cloudwatch_link,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

        hook = BatchClientHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        named = (
            f"AWS Batch job {self.job_name} ({self.job_id})"
            if self.job_name
            else f"AWS Batch job {self.job_id}"
        )
        if self.end_in_trigger:
            await warm_the_supervisors_api(self)
        missing, status = 0, "unknown"
        tail: JobLogTail | None = None
        async with AsyncExitStack() as connections:
            client = await connections.enter_async_context(await hook.get_async_conn())
            for attempt in range(1, self.waiter_max_attempts + 1):
                jobs = (await client.describe_jobs(jobs=[self.job_id])).get("jobs", [])
                if not jobs:
                    missing += 1
                    self.log.warning(
                        "%s: DescribeJobs returned no job (%d/%d)", named, missing, self.vanished_polls
                    )
                    if missing >= self.vanished_polls:
                        yield self._event(
                            "error",
                            reason="vanished",
                            message=f"{named} no longer exists: DescribeJobs returned nothing {missing} "
                            "polls in a row (the Batch service lost it, or it is past AWS's "
                            "retention). A retry of the task submits the run's job again",
                        )
                        return
                else:
                    missing = 0
                    job = jobs[0]
                    status = job.get("status", "unknown")
                    if self.stream_logs:
                        tail = tail or await self._log_tail(connections, job)
                        ended = status in (SUCCEEDED, FAILED)
                        await tail.follow(batch_log_streams(job), FINAL_PAGES if ended else PAGES_PER_POLL)
                    if status == SUCCEEDED:
                        yield await self._succeeded(job)
                        return
                    if status == FAILED:
                        yield self._event(
                            "failure",
                            reason="failed",
                            exit_code=exit_code_of(job),
                            status_reason=job.get("statusReason", ""),
                            message=f"{named} FAILED: {job.get('statusReason', 'no reason given')}",
                        )
                        return
                    self.log.info("%s is %s (poll %d/%d)", named, status, attempt, self.waiter_max_attempts)
                await asyncio.sleep(self.waiter_delay)
        yield self._event(
            "error",
            reason="timeout",
            message=f"{named} is still {status} after {self.waiter_max_attempts} polls",
        )

    def _event(self, status: str, **details: Any) -> TriggerEvent:
        """The event for the operator; `log_printed`: this trigger logged the job's lines as they came."""
        return TriggerEvent(
            {"status": status, "job_id": self.job_id, "log_printed": self.stream_logs, **details}
        )

    async def _succeeded(self, job: dict[str, Any]) -> TriggerEvent | TaskSuccessEvent:
        """The task's end with the XComs its resume would push, or (when it cannot) the resume."""
        if self.end_in_trigger:
            ended = await end_with_xcoms(self, self.resume_xcoms(job))
            if ended is not None:
                return ended
        return self._event("success")

    def resume_xcoms(self, job: dict[str, Any]) -> dict[str, Any]:
        """What the resumed task pushes for a SUCCEEDED job: `BatchOperator.execute_complete`'s job id
        (return value) and, when the job has a log stream, its CloudWatchEventsLink details
        (`_persist_cloudwatch_link`), then the link's URL the worker's `finalize` stores for the UI
        (`_link_CloudWatchEventsLink`, "" since the task deferred: the details were not there yet)."""
        from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

        xcoms: dict[str, Any] = {"return_value": self.job_id}
        if self.cloudwatch_link is not None:
            stream = first_log_stream(job, self.cloudwatch_link["region_name"])
            if stream:
                link, details = CloudWatchEventsLink(), {**self.cloudwatch_link, **stream}
                xcoms[link.key] = details
                xcoms[link.xcom_key] = link.format_link(**details)
        return xcoms

    async def _log_tail(self, connections: AsyncExitStack, job: dict[str, Any]) -> JobLogTail:
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        logs_hook = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        logs = await connections.enter_async_context(await logs_hook.get_async_conn())
        return JobLogTail(logs, batch_log_group(job), self.job_name or self.job_id, self.log)


def first_log_stream(job: dict[str, Any], region: str) -> dict[str, str] | None:
    """The provider's CloudWatch details of a job's first log stream (`get_job_all_awslogs_info`, which the
    operator's link uses), parsed from a description already read: no second DescribeJobs, and `region`
    (the operator's hook's) where the job's log options name none."""
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
    from airflow.sdk.exceptions import AirflowException

    class Described(BatchClientHook):
        def get_job_description(self, job_id: str) -> dict[str, Any]:
            return job

        @property
        def conn_region_name(self) -> str:
            return region

    try:
        found = Described(region_name=region).get_job_all_awslogs_info(job.get("jobId", ""))
    except AirflowException:  # not a job type with a log: the operator's link is skipped the same way
        return None
    return found[0] if found else None
