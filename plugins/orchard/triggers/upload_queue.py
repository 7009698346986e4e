"""The Asset watcher's SQS trigger, for an upload queue that may vanish.

The provider's `SqsSensorTrigger` (what `MessageQueueTrigger(scheme="sqs")` runs) lets ReceiveMessage's
error escape when the queue does not exist (deleted, or never created in this account/Region: AWS answers
`AWS.SimpleQueueService.NonExistentQueue` / `QueueDoesNotExist`, "ReceiveMessage - Amazon SQS API Reference",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html): the
triggerer logs a traceback and restarts the watcher, again and again, and no message says which queue or
what to do. An Asset watcher has no task to fail, so this trigger logs an ERROR naming the queue and the
fix each time it finds the queue missing, backs off (up to `MAX_BACKOFF_S`), and resumes by itself once the
queue exists again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
MAX_BACKOFF_S = 300


class UploadQueueTrigger(SqsSensorTrigger):
    def __init__(self, *args: Any, fix: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fix = fix
        self._missing = 0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "fix": self.fix}

    async def poll_sqs(self, client: Any) -> Any:
        try:
            found = await super().poll_sqs(client)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code not in MISSING_QUEUE_CODES:
                raise
            self._missing += 1
            backoff = min(MAX_BACKOFF_S, self.waiter_delay * 2 ** min(self._missing - 1, 10))
            self.log.error(
                "the upload queue %s does not exist (%s): uploads start no run until it exists again. %s "
                "Checking again in %d s.",
                self.sqs_queue,
                code,
                self.fix,
                backoff,
            )
            await asyncio.sleep(max(0, backoff - self.waiter_delay))  # run() sleeps waiter_delay too
            return []
        if self._missing:
            self.log.info("the upload queue %s exists again: watching it", self.sqs_queue)
            self._missing = 0
        return found
