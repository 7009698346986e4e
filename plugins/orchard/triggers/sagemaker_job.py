"""SageMaker's training / processing wait, plus what a person's action on the deferred task does to the job.

Airflow 3.3's triggerer calls `BaseTrigger.on_kill` only when a person acts on the deferred task (mark
failed, mark success, clear), never on a triggerer restart, a redistribution or a timeout
(airflow/triggers/base.py). That is exactly when the paid job must stop: the task no longer waits for it.
"""

from __future__ import annotations

import asyncio

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger


class OrchardSageMakerTrigger(SageMakerTrigger):
    """The provider's SageMakerTrigger; `on_kill` stops the job it waits on (only if still InProgress)."""

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
