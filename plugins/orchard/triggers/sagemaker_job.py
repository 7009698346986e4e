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
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from orchard.triggers.job_logs import (
    FINAL_PAGES,
    PAGES_PER_POLL,
    JobLogTail,
    StreamLogsFlag,
    logging_while_waiting,
)
from orchard.triggers.task_end import end_with_xcoms, warm_the_supervisors_api

LOG_GROUPS = {"training": "/aws/sagemaker/TrainingJobs", "processing": "/aws/sagemaker/ProcessingJobs"}


class OrchardSageMakerTrigger(StreamLogsFlag, SageMakerTrigger):
    """The provider's SageMakerTrigger; logs the job's lines while it waits (`stream_logs`) and `on_kill`
    stops the job it waits on (only if still InProgress); with `end_in_trigger` a Completed job ends the task."""

    def __init__(self, *args: Any, end_in_trigger: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.end_in_trigger = bool(end_in_trigger)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "end_in_trigger": self.end_in_trigger}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.end_in_trigger:
            await warm_the_supervisors_api(self)
        async for event in self._waiting():
            yield await self._ending(event) if self.end_in_trigger else event

    async def _ending(self, event: TriggerEvent) -> TriggerEvent | TaskSuccessEvent:
        """The task's end when its job Completed, with the return value its resume would push; else `event`."""
        if event.payload.get("status") != "success":
            return event
        from airflow.providers.amazon.aws.operators.sagemaker import serialize

        from orchard.operators.sagemaker_job_retry import KINDS

        kind = self.job_type.capitalize()
        describe, _, _, status_key = KINDS[kind]
        try:
            description = await asyncio.to_thread(getattr(self.hook(), describe), self.job_name)
        except Exception as error:  # the resume describes it again, with the task's retries
            self.log.warning("SageMaker %s: %s; the task resumes to read its outcome", self.job_name, error)
            return event
        if description[status_key] != "Completed":  # Stopped: the waiter's success, the task's failure
            return event
        ended = await end_with_xcoms(self, {"return_value": {kind: serialize(description)}})
        return ended or event

    async def _waiting(self) -> AsyncIterator[TriggerEvent]:
        if not self.stream_logs:
            async for event in super().run():
                yield event
            return
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        logs_hook = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await logs_hook.get_async_conn() as logs:
            tail = JobLogTail(logs, LOG_GROUPS[self.job_type.lower()], self.job_name, self.log)

            async def follow(pages: int = PAGES_PER_POLL) -> None:
                await tail.follow(await tail.sagemaker_streams(self.job_name), pages)

            async for event in logging_while_waiting(
                super().run(), tail, follow, lambda: follow(FINAL_PAGES), self.waiter_delay
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
