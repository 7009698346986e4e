"""The provider's endpoint wait (SageMakerTrigger, job_type "endpoint": boto's `endpoint_in_service` waiter),
ending the task in the triggerer once the endpoint is InService (`orchard.triggers.task_end`, issue 17.1).

`SageMakerEndpointOperator.execute_complete` would only describe the endpoint and its config and return
`{"EndpointConfig": ..., "Endpoint": ...}` as the provider serializes them: the trigger makes the same hook
calls (in a thread, the operator's sync client) and pushes that value before it yields a `TaskSuccessEvent`,
instead of a fresh worker process doing it between the endpoint's creation and the run's next task. Any other
end (Failed, the waiter's timeout, a describe or push that fails) resumes the task, whose operator words it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from orchard.triggers.task_end import end_with_xcoms, warm_the_supervisors_api


class SageMakerEndpointInServiceTrigger(SageMakerTrigger):
    def __init__(self, *args: Any, end_in_trigger: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.end_in_trigger = bool(end_in_trigger)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "end_in_trigger": self.end_in_trigger}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.end_in_trigger:
            await warm_the_supervisors_api(self)
        waiting = super().run()
        try:
            async for event in waiting:
                yield await self._ending(event) if self.end_in_trigger else event
        finally:  # closed with this one: left to the loop's shutdown, its AWS client took ~20 s to close
            await waiting.aclose()

    async def _ending(self, event: TriggerEvent) -> TriggerEvent | TaskSuccessEvent:
        if event.payload.get("status") != "success":
            return event
        try:
            value = await asyncio.to_thread(self.resume_value)
        except Exception as error:  # the resume describes them again, with the task's retries
            self.log.warning("endpoint %s: %s; the task resumes to describe it", self.job_name, error)
            return event
        return await end_with_xcoms(self, {"return_value": value}) or event

    def resume_value(self) -> dict[str, Any]:
        """What `SageMakerEndpointOperator.execute_complete` returns for this endpoint."""
        from airflow.providers.amazon.aws.operators.sagemaker import serialize

        hook = self.hook()
        endpoint = hook.describe_endpoint(self.job_name)
        return {
            "EndpointConfig": serialize(hook.describe_endpoint_config(endpoint["EndpointConfigName"])),
            "Endpoint": serialize(hook.describe_endpoint(endpoint["EndpointName"])),
        }
