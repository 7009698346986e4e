"""The provider's endpoint wait (SageMakerTrigger, job_type "endpoint": boto's `endpoint_in_service` waiter),
ending the task in the triggerer once the endpoint is InService (`orchard.triggers.task_end`, issue 17.1).

`SageMakerEndpointOperator.execute_complete` would only describe the endpoint and its config and return
`{"EndpointConfig": ..., "Endpoint": ...}` as the provider serializes them: the trigger makes the same hook
calls (in a thread, the operator's sync client) and pushes that value before it yields a `TaskSuccessEvent`,
instead of a fresh worker process doing it between the endpoint's creation and the run's next task. Any other
end (Failed, the waiter's timeout, a describe or push that fails) resumes the task, whose operator words it.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TriggerEvent

from orchard.triggers.task_end import EndsProviderTaskOnSuccess


class SageMakerEndpointInServiceTrigger(EndsProviderTaskOnSuccess, SageMakerTrigger):
    def success_xcoms(self, event: TriggerEvent) -> dict[str, Any]:
        return {"return_value": self.resume_value()}

    def resume_value(self) -> dict[str, Any]:
        """What `SageMakerEndpointOperator.execute_complete` returns for this endpoint."""
        from airflow.providers.amazon.aws.operators.sagemaker import serialize

        hook = self.hook()
        endpoint = hook.describe_endpoint(self.job_name)
        return {
            "EndpointConfig": serialize(hook.describe_endpoint_config(endpoint["EndpointConfigName"])),
            "Endpoint": serialize(hook.describe_endpoint(endpoint["EndpointName"])),
        }
