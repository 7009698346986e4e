"""A running job's CloudWatch Logs lines in the task log while the task is deferred, not only when it ends.

Airflow 3's triggerer writes every log record a trigger makes while it runs to that task instance's log
(`airflow/jobs/triggerer_job_runner.py`: `run_trigger` binds the trigger id to the logging context and the
supervisor routes those records to `<task log>.trigger.<id>.log`, which the UI shows with the task's log).
So a trigger that reads the job's new log events on each poll and logs them makes the job's output appear
as it is written.

`JobLogTail` keeps, per log stream, the `nextForwardToken` of its last GetLogEvents call and asks only for
what came after it ("GetLogEvents - Amazon CloudWatch Logs API Reference", https://docs.aws.amazon.com/
AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html: "If you have reached the end of the stream,
it returns the same token you passed in"; the token expires after 24 hours, a poll renews it). Work per poll
is bounded (`EVENTS_PER_CALL` x `PAGES_PER_POLL` lines per stream; the rest comes next poll), and the drain
after the job ended is bounded too (`FINAL_PAGES`). A log group or stream that does not exist yet
(ResourceNotFoundException: the job is still starting) is not an error; any other failure to read the log
stops the following, never the wait: the job's state decides the task, the log is a courtesy.

Streams of a SageMaker job are found with DescribeLogStreams by the prefix `<job name>/`
("DescribeLogStreams", https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/
API_DescribeLogStreams.html); a Batch job names its streams in DescribeJobs (`container.logStreamName`).
The trigger's event then says `log_printed: True`, so the operator does not print the same lines again.

Shared with the EMR step tail (`orchard.triggers.emr_step`, which reads S3, not CloudWatch): `LogFollower`
(the `[label] line` format and "stop following, keep waiting") and `logging_while_waiting` (the log polled
beside a provider trigger's unchanged wait, drained when it ends).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow.triggers.base import TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

EVENTS_PER_CALL = 1000  # GetLogEvents' `limit` (AWS allows up to 10,000 events or 1 MB per call)
PAGES_PER_POLL = 5  # at most 5,000 lines per stream per poll; a chattier job catches up over the next polls
FINAL_PAGES = 20  # the drain once the job ended: up to 20,000 more lines per stream, then a pointer
STREAM_PAGES = 5  # DescribeLogStreams pages (50 streams each) per poll: jobs on many instances
NOT_FOUND = "ResourceNotFoundException"


class LogFollower:
    """What every job log follower shares: each line goes to the trigger's log prefixed with `[label]`, and
    after an error other than "not there yet" it is `broken`: it stops, the wait goes on.

    :param label: what each line is prefixed with in the task log (the job's name).
    :param log: the trigger's logger.
    """

    def __init__(self, label: str, log: Any):
        self.label, self.log = label, log
        self.broken = False

    def emit(self, line: str) -> None:
        self.log.info("[%s] %s", self.label, line.rstrip("\n"))

    def give_up(self, where: str, error: BaseException) -> None:
        self.broken = True
        self.log.warning("[%s] stopped following %s (%s); the wait goes on", self.label, where, error)


async def logging_while_waiting(
    waiting: AsyncIterator[TriggerEvent],
    follower: LogFollower,
    poll: Callable[[], Awaitable[None]],
    drain: Callable[[], Awaitable[None]],
    delay: float,
) -> AsyncIterator[TriggerEvent]:
    """The events of `waiting` (a provider trigger's run(), unchanged), while `poll()` logs the job's new
    lines every `delay` seconds; when the wait ends, `drain()` logs the rest and the event goes out with
    `log_printed: True`. Nothing the log does fails the wait: the job's state decides the task."""

    async def follow() -> None:
        while not follower.broken:
            await _courteously(follower, poll)
            await asyncio.sleep(delay)

    following = asyncio.create_task(follow())
    try:
        async for event in waiting:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            if not follower.broken:
                await _courteously(follower, drain)
            yield TriggerEvent({**event.payload, "log_printed": True})
    finally:
        following.cancel()


async def _courteously(follower: LogFollower, read: Callable[[], Awaitable[None]]) -> None:
    try:
        await read()
    except Exception as error:  # a bug or an outage in reading the log must not fail the wait
        follower.give_up("the job's log", error)


class JobLogTail(LogFollower):
    """Logs the new events of a job's log streams through `log`, remembering where each stream was left.

    :param logs: an async CloudWatch Logs client (aiobotocore, from the hook's `get_async_conn`).
    :param group: the log group, e.g. "/aws/sagemaker/ProcessingJobs" or "/aws/batch/job".
    :param label: what each line is prefixed with in the task log (the job's name).
    :param log: the trigger's logger.
    """

    def __init__(self, logs: Any, group: str, label: str, log: Any):
        super().__init__(label, log)
        self.logs, self.group = logs, group
        self.tokens: dict[str, str] = {}

    async def follow(self, streams: list[str], pages: int = PAGES_PER_POLL) -> None:
        """Log what `streams` got since the last call, at most `pages` x EVENTS_PER_CALL lines each."""
        for stream in streams:
            if self.broken:
                return
            try:
                caught_up = await self._read(stream, pages)
            except (ClientError, BotoCoreError) as error:
                self.give_up(f"CloudWatch Logs {self.group}/{stream}", error)
                return
            if not caught_up and pages == FINAL_PAGES:
                self.log.info(
                    "[%s] ... more lines in CloudWatch Logs %s / %s", self.label, self.group, stream
                )

    async def sagemaker_streams(self, job_name: str) -> list[str]:
        """The streams of SageMaker job `job_name` (`<job>/algo-N-<epoch>`), oldest first; [] before any."""
        streams: list[str] = []
        request: dict[str, Any] = {"logGroupName": self.group, "logStreamNamePrefix": f"{job_name}/"}
        for _ in range(STREAM_PAGES):
            try:
                response = await self.logs.describe_log_streams(**request)
            except (ClientError, BotoCoreError) as error:
                if isinstance(error, ClientError) and error.response["Error"]["Code"] == NOT_FOUND:
                    return streams
                self.broken = True
                self.log.warning("[%s] cannot list CloudWatch Logs streams (%s)", self.label, error)
                return streams
            streams += [stream["logStreamName"] for stream in response.get("logStreams", [])]
            if not response.get("nextToken"):
                break
            request["nextToken"] = response["nextToken"]
        return streams

    async def _read(self, stream: str, pages: int) -> bool:
        """Log up to `pages` pages of `stream`'s new events; True once at the end of what it holds now."""
        for _ in range(pages):
            request: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": stream,
                "startFromHead": True,
                "limit": EVENTS_PER_CALL,
            }
            if stream in self.tokens:
                request["nextToken"] = self.tokens[stream]
            try:
                response = await self.logs.get_log_events(**request)
            except ClientError as error:
                if error.response["Error"]["Code"] == NOT_FOUND:
                    return True  # the job has not created it yet
                raise
            for event in response.get("events", []):
                self.emit(event["message"])
            token = response.get("nextForwardToken")
            # The same token back means the end of the stream; an empty page may still have a new token.
            if not token or token == self.tokens.get(stream):
                return True
            self.tokens[stream] = token
        return False


def batch_log_streams(job: dict[str, Any]) -> list[str]:
    """The log streams of a DescribeJobs job, every attempt's then the current one's, without repeats."""
    containers = [attempt.get("container", {}) for attempt in job.get("attempts", [])]
    containers.append(job.get("container", {}))
    names = [container.get("logStreamName") for container in containers]
    return list(dict.fromkeys(name for name in names if name))


def batch_log_group(job: dict[str, Any], default: str = "/aws/batch/job") -> str:
    """The job's awslogs group: its logConfiguration's `awslogs-group`, else Batch's default group
    ("Using the awslogs log driver - AWS Batch", https://docs.aws.amazon.com/batch/latest/userguide/
    using_awslogs.html: jobs log to /aws/batch/job unless the job definition names another group)."""
    options = (job.get("container", {}).get("logConfiguration") or {}).get("options") or {}
    return options.get("awslogs-group") or default


class StreamLogsFlag:
    """Trigger mixin: the `stream_logs` flag, kept through `serialize` (the triggerer rebuilds the trigger
    from its kwargs). `STREAM_LOGS_DEFAULT` is the trigger's default."""

    STREAM_LOGS_DEFAULT = False

    def __init__(self, *args: Any, stream_logs: bool | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stream_logs = bool(self.STREAM_LOGS_DEFAULT if stream_logs is None else stream_logs)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()  # type: ignore[misc]
        return path, {**kwargs, "stream_logs": self.stream_logs}
