"""The provider's SageMakerEndpointOperator, able to stand aside for an endpoint the user already runs.

With `existing_endpoint_name` set it creates nothing and returns that endpoint's description, so the
DAG's setup task succeeds either way (Airflow wants setups followed by all-success tasks: a skipped
setup would skip the work too). The run's teardown then leaves the existing endpoint alone.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, serialize


class SageMakerAsyncEndpointOperator(SageMakerEndpointOperator):
    template_fields = (*SageMakerEndpointOperator.template_fields, "existing_endpoint_name")

    def __init__(self, *, existing_endpoint_name: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.existing_endpoint_name = existing_endpoint_name

    def execute(self, context: Any) -> dict:
        if self.existing_endpoint_name:
            self.log.info(
                "using the existing endpoint %s as is: nothing created", self.existing_endpoint_name
            )
            return {"Endpoint": serialize(self.hook.describe_endpoint(self.existing_endpoint_name))}
        return super().execute(context)
