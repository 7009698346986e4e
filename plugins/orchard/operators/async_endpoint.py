"""The provider's SageMakerEndpointOperator, for a run that may be retried or may reuse an endpoint.

- With `existing_endpoint_name` set it creates nothing and returns that endpoint's description, so the
  DAG's setup task succeeds either way (Airflow wants setups followed by all-success tasks: a skipped
  setup would skip the work too). The run's teardown then leaves the existing endpoint alone.
- A retry finds the endpoint its first try created: it waits on it (deferred) if it is still being
  created, returns if it is InService, and fails with SageMaker's reason if it Failed — instead of the
  provider's fallback of updating an existing endpoint with the same config.
- Its wait ends the task in the triggerer once the endpoint is InService
  (`orchard.triggers.sagemaker_endpoint`): the resume would only describe it.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, serialize
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from botocore.exceptions import ClientError

from orchard.triggers.sagemaker_endpoint import SageMakerEndpointInServiceTrigger
from orchard.triggers.task_end import may_end_in_trigger


class SageMakerAsyncEndpointOperator(SageMakerEndpointOperator):
    template_fields = (*SageMakerEndpointOperator.template_fields, "existing_endpoint_name", "check_interval")

    def __init__(self, *, existing_endpoint_name: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.existing_endpoint_name = existing_endpoint_name

    def execute(self, context: Any) -> dict:
        self.check_interval = int(
            self.check_interval
        )  # a template ("{{ params.poll_seconds }}") renders text
        if self.existing_endpoint_name:
            self.log.info(
                "using the existing endpoint %s as is: nothing created", self.existing_endpoint_name
            )
            return {"Endpoint": serialize(self.hook.describe_endpoint(self.existing_endpoint_name))}
        name = self.config["EndpointName"]
        status, reason = self._status(name)
        if status is None:
            return super().execute(context)
        self.log.info("endpoint %s already exists (%s): a retry waits on it", name, status)
        if status == "Failed":
            raise RuntimeError(f"endpoint {name} failed: {reason}")
        if status == "InService":
            return {"Endpoint": serialize(self.hook.describe_endpoint(name))}
        self.defer(
            trigger=SageMakerTrigger(
                job_name=name,
                job_type="endpoint",
                waiter_delay=self.check_interval,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            timeout=datetime.timedelta(seconds=self.max_ingestion_time),
        )

    def defer(self, *, trigger: Any, **kwargs: Any) -> None:
        """The provider's endpoint wait (its execute's and this retry's), as the trigger that may end the task."""
        if type(trigger) is SageMakerTrigger and trigger.job_type.lower() == "endpoint":
            _, trigger_kwargs = trigger.serialize()
            trigger = SageMakerEndpointInServiceTrigger(
                **trigger_kwargs, end_in_trigger=may_end_in_trigger(self)
            )
        super().defer(trigger=trigger, **kwargs)

    def _status(self, name: str) -> tuple[str | None, str]:
        try:
            endpoint = self.hook.describe_endpoint(name)
        except ClientError as error:
            if "Could not find endpoint" in error.response["Error"]["Message"]:
                return None, ""
            raise
        return endpoint["EndpointStatus"], endpoint.get("FailureReason", "")
