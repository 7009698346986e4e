"""SageMaker's training / processing wait, with the job's log lines as they come and a stop on a person's action.

* `stream_logs`: while the provider's waiter polls, a side task logs the job's new CloudWatch Logs lines
  every `waiter_delay` seconds (`orchard.triggers.job_logs`), so they reach the task log while the task is
  deferred; when the wait ends the rest is drained and the event says `log_printed`, so the operator does
  not print them again. The wait itself is the provider's, unchanged.
* `end_in_trigger`: a job that ended Completed ends the task here (`orchard.triggers.task_end`): the
  operator's resume would only describe the job and return `{<Kind>: <Describe...Job>}` as the provider
  serializes it; the trigger makes the same hook call (in a thread, the operator's sync client) and pushes
  that value before it yields a `TaskSuccessEvent`. Any other end (Failed, Stopped, the wait's error, a
  describe or push that fails) resumes the task, whose operator words it (InputError, a stop, a timeout).
* Airflow 3.3's triggerer calls `BaseTrigger.on_kill` only when a person acts on the deferred task (mark
  failed, mark success, clear), never on a triggerer restart, a redistribution or a timeout
  (airflow/triggers/base.py). That is exactly when the paid job must stop: the task no longer waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TriggerEvent

from orchard.triggers.job_logs import (
    FINAL_PAGES,
    PAGES_PER_POLL,
    JobLogTail,
    StreamLogsFlag,
    logging_while_waiting,
)
from orchard.triggers.task_end import EndsProviderTaskOnSuccess

LOG_GROUPS = {"training": "/aws/sagemaker/TrainingJobs", "processing": "/aws/sagemaker/ProcessingJobs"}


class OrchardSageMakerTrigger(EndsProviderTaskOnSuccess, StreamLogsFlag, SageMakerTrigger):
    """The provider's SageMakerTrigger; logs the job's lines while it waits (`stream_logs`) and `on_kill`
    stops the job it waits on (only if still InProgress); with `end_in_trigger` a Completed job ends the task."""

    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        """The return value the resume would push for a Completed job; raises for any other (Stopped is the
        waiter's success and the task's failure)."""
        from airflow.providers.amazon.aws.operators.sagemaker import serialize

        from orchard.operators.sagemaker_job_retry import KINDS

        kind = self.job_type.capitalize()
        describe, _, _, status_key = KINDS[kind]
        description = getattr(self.hook(), describe)(self.job_name)
        if description[status_key] != "Completed":
            raise RuntimeError(f"SageMaker {kind.lower()} job {self.job_name} is {description[status_key]}")
        return {"return_value": {kind: serialize(description)}}

    async def waiting(self) -> AsyncIterator[TriggerEvent]:
        if not self.stream_logs:
            async for event in SageMakerTrigger.run(self):
                yield event
            return
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        logs_hook = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await logs_hook.get_async_conn() as logs:
            tail = JobLogTail(logs, LOG_GROUPS[self.job_type.lower()], self.job_name, self.log)

            async def follow(pages: int = PAGES_PER_POLL) -> None:
                await tail.follow(await tail.sagemaker_streams(self.job_name), pages)

            async for event in logging_while_waiting(
                SageMakerTrigger.run(self), tail, follow, lambda: follow(FINAL_PAGES), self.waiter_delay
            ):
                yield event

    async def on_kill(self) -> None:
        from orchard.operators.sagemaker_job_retry import stop_if_running

        client = self.hook().conn
        stopped = await asyncio.to_thread(stop_if_running, client, self.job_type.capitalize(), self.job_name)
        self.log.info(
            "a person acted on the deferred task: SageMaker %s job %s %s",
            self.job_type.lower(),
            self.job_name,
            "stopped" if stopped else "was not running",
        )
