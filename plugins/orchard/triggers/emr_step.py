"""Wait for an EMR step, with the step's stdout and stderr lines in the task log as EMR archives them.

EMR on EC2 writes a step's logs to `<LogUri>/<cluster id>/steps/<step id>/` (controller.gz, stdout.gz,
stderr.gz) and pushes them there periodically while the step runs, about every five minutes ("View log
files archived to Amazon S3", https://docs.aws.amazon.com/emr/latest/ManagementGuide/
emr-manage-view-web-log-files.html; the sandbox pushes every few seconds, docs/sandbox.md). Each push
rewrites the gzip object whole, so `StepLogTail` reads a file again only when its ETag changed (GetObject
with If-None-Match answers 304 Not Modified otherwise, "GetObject - Amazon S3 API Reference",
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html) and logs only the complete lines it has
not logged yet, at most `LINES_PER_POLL` per file and poll (the rest comes next poll). The LogUri is the
cluster's, from DescribeCluster on the first poll ("DescribeCluster", https://docs.aws.amazon.com/emr/
latest/APIReference/API_DescribeCluster.html, Cluster.LogUri; EMR may give it as `s3n://...`).

The wait is the provider's EmrStepSensorTrigger's or EmrAddStepsTrigger's, unchanged (orchard.compat's on a
provider whose EMR triggers drop the region); the log is a courtesy (`orchard.triggers.job_logs.
logging_while_waiting`): a missing or unreadable log never fails the wait; the final event says `log_printed`.

With `end_in_trigger` (fruit_features' `extract`, issue 17.1) steps that all COMPLETED end the add-steps task
here (`orchard.triggers.task_end`): `EmrAddStepsOperator.execute_complete` would only return the step ids the
event carries (the operator's links and `job_flow_id` XCom were pushed before it deferred). A failed,
cancelled or interrupted step, a timeout or a push that fails resume the task, whose operator words it
(InputError for a step that failed on its input). The step sensor's trigger never ends its task: after
`extract` the sensor's first poke finds the step COMPLETED and it does not defer.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from airflow.triggers.base import TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

from orchard.compat import EmrAddStepsTrigger, EmrStepSensorTrigger
from orchard.triggers.job_logs import (
    EVENTS_PER_CALL,
    FINAL_PAGES,
    PAGES_PER_POLL,
    LogFollower,
    StreamLogsFlag,
    logging_while_waiting,
)
from orchard.triggers.task_end import EndsProviderTaskOnSuccess

STEP_LOG_FILES = ("stdout.gz", "stderr.gz")  # the step process's own output (controller.gz is EMR's)
LINES_PER_POLL = EVENTS_PER_CALL * PAGES_PER_POLL  # the same bound per poll as a CloudWatch stream's
FINAL_LINES = EVENTS_PER_CALL * FINAL_PAGES  # the drain once the step ended, then a pointer to the file
MAX_OBJECT_BYTES = 16 * 2**20  # a larger stdout.gz is not downloaded every push: a pointer instead
MAX_TEXT_BYTES = 128 * 2**20  # nor decompressed past this (a gzip of repeated lines can be 1000x smaller)
NOT_THERE_YET = {"NoSuchKey", "404"}
NOT_MODIFIED = "304"


@dataclass
class _LogObject:
    """Where the tail is in one file: the version read last, how many of its complete lines were taken,
    and those taken but not logged yet (over a poll's bound)."""

    etag: str | None = None
    taken: int = 0
    pending: list[str] = field(default_factory=list)
    too_big: bool = False


def step_log_folder(log_uri: str, cluster_id: str, step_id: str) -> tuple[str, str]:
    """(bucket, key prefix) of a step's logs under the cluster's LogUri (s3://, s3n:// or s3a://)."""
    parsed = urlparse(log_uri)
    base = parsed.path.strip("/")
    return parsed.netloc, f"{base}/{cluster_id}/steps/{step_id}/".lstrip("/")


class StepLogTail(LogFollower):
    """Logs the new lines of the stdout.gz and stderr.gz of a cluster's steps in its LogUri, each line
    prefixed with its step's id.

    :param s3: an async S3 client; :param emr: an async EMR client (aiobotocore, from `get_async_conn`).
    """

    def __init__(self, s3: Any, emr: Any, cluster_id: str, step_ids: list[str], log: Any):
        super().__init__(cluster_id, log)
        self.s3, self.emr, self.cluster_id = s3, emr, cluster_id
        self.log_uri: str | None = None
        self.files = {(step, name): _LogObject() for step in step_ids for name in STEP_LOG_FILES}

    async def follow(self, final: bool = False) -> None:
        """Log what the files got since the last call; `final`: the steps ended, log the rest."""
        if self.broken:
            return
        try:
            self.log_uri = self.log_uri or await self._log_uri()
            if self.log_uri is None:
                return
            for (step, name), state in self.files.items():
                await self._read(step, name, state, final)
        except (ClientError, BotoCoreError) as error:
            self.give_up(f"the step logs under {self.log_uri}", error)
        if final and self.log_uri:
            for step in dict.fromkeys(step for step, _ in self.files):
                self.log.info("[%s] the step's logs: %s", step, self.where(step))

    def where(self, step: str, name: str = "") -> str:
        bucket, prefix = step_log_folder(self.log_uri or "", self.cluster_id, step)
        return f"s3://{bucket}/{prefix}{name}"

    async def _log_uri(self) -> str | None:
        cluster = (await self.emr.describe_cluster(ClusterId=self.cluster_id))["Cluster"]
        if not cluster.get("LogUri"):
            self.broken = True  # nothing to follow, nothing wrong: the wait goes on
            self.log.info("[%s] the cluster has no LogUri: no step logs to follow", self.cluster_id)
            return None
        return cluster["LogUri"]

    async def _read(self, step: str, name: str, state: _LogObject, final: bool) -> None:
        if not state.too_big:
            await self._take_new_version(step, name, state, final)
        bound = FINAL_LINES if final else LINES_PER_POLL
        for line in state.pending[:bound]:
            self.log.info("[%s] %s", step, line.rstrip("\n"))
        state.pending = state.pending[bound:]
        if final and state.pending:
            self.log.info("[%s] ... %d more lines in %s", step, len(state.pending), self.where(step, name))

    async def _take_new_version(self, step: str, name: str, state: _LogObject, final: bool) -> None:
        """Add the lines past `state.taken` of the file's current version to `state.pending`."""
        bucket, prefix = step_log_folder(self.log_uri or "", self.cluster_id, step)
        request = {"Bucket": bucket, "Key": prefix + name}
        if state.etag:
            request["IfNoneMatch"] = state.etag
        try:
            response = await self.s3.get_object(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in NOT_THERE_YET | {NOT_MODIFIED}:
                return  # not pushed yet, or not changed since the last read
            raise
        async with response["Body"] as body:
            if response["ContentLength"] > MAX_OBJECT_BYTES:
                state.too_big = True
                self.log.info("[%s] %s is too large to follow here: %s", step, name, self.where(step, name))
                return
            data = await body.read()
        lines = await asyncio.to_thread(_lines, data)  # off the triggerer's event loop
        if lines is None:
            state.too_big = True
            self.log.info("[%s] %s is too large to follow here: %s", step, name, self.where(step, name))
            return
        if not final and lines and not lines[-1].endswith("\n"):
            lines.pop()  # a line the push caught half-written: it is whole in the next version
        state.pending += lines[state.taken :]
        state.taken = max(state.taken, len(lines))
        state.etag = response["ETag"]


def _lines(gzipped: bytes) -> list[str] | None:
    """The text's lines, keeping their ends; None past MAX_TEXT_BYTES decompressed."""
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    text = inflate.decompress(gzipped, MAX_TEXT_BYTES)
    if inflate.unconsumed_tail:
        return None
    return text.decode(errors="replace").splitlines(keepends=True)


class _StepLogsWhileWaiting(StreamLogsFlag):
    """A provider EMR step trigger's wait, unchanged; with `stream_logs`, its steps' stdout and stderr lines
    are logged from the cluster's LogUri while it waits."""

    STREAM_LOGS_DEFAULT = True

    def step_ids(self) -> list[str]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if not self.stream_logs:
            async for event in super().run():
                yield event
            return
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3_hook = S3Hook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )
        async with await s3_hook.get_async_conn() as s3, await self.hook().get_async_conn() as emr:
            tail = StepLogTail(s3, emr, self.serialized_fields["job_flow_id"], self.step_ids(), self.log)
            async for event in logging_while_waiting(
                super().run(), tail, tail.follow, lambda: tail.follow(final=True), self.waiter_delay
            ):
                yield event


class EmrStepLogTrigger(_StepLogsWhileWaiting, EmrStepSensorTrigger):
    """EmrStepSensorTrigger (one step) that logs the step's lines while it waits."""

    def step_ids(self) -> list[str]:
        return [self.serialized_fields["step_id"]]


class EmrAddStepsLogTrigger(EndsProviderTaskOnSuccess, _StepLogsWhileWaiting, EmrAddStepsTrigger):
    """EmrAddStepsTrigger (the steps just added) that logs the steps' lines while it waits; with
    `end_in_trigger`, steps that all COMPLETED end the task (`orchard.triggers.task_end`)."""

    def step_ids(self) -> list[str]:
        return list(self.serialized_fields["step_ids"])

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        """`EmrAddStepsOperator.execute_complete`'s return value for a success (the waiter saw every step
        COMPLETED): the step ids the event delivers. Orchard's resume adds nothing to a success: its input
        error check reads only failed steps."""
        return {"return_value": event.payload["value"]}


def operator_connection(operator: Any) -> dict[str, Any]:
    """The connection parameters an EMR operator gives its trigger (some providers' EMR triggers drop the
    region when they serialize: orchard's triggers are built with the operator's own)."""
    return {
        "region_name": operator.region_name,
        "verify": operator.verify,
        "botocore_config": operator.botocore_config,
    }
