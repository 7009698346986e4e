"""The one place for names whose home or behaviour differs between the Airflow / Amazon provider versions
orchard runs on: the versions it targets (requirements.txt: Airflow 3.3.2, apache-airflow-providers-amazon
9.39.0) and the newest Airflow 3 Amazon MWAA offers with the provider its constraints file pins
(compat/mwaa-3.3.1.txt: Airflow 3.3.1, apache-airflow-providers-amazon 9.34.0; `make compat` runs the DAG
integrity tests and an e2e test there).

DAGs and plugins import such names from here, never from a version-specific location; each fallback says
which version needs it. Light imports only: DAG files load this at parse time.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger as _ProviderWaiterTrigger

__all__ = ["AwsBaseWaiterTrigger"]


if getattr(_ProviderWaiterTrigger.hook, "__isabstractmethod__", False):
    # apache-airflow-providers-amazon < the version orchard targets (9.34.0, MWAA 3.3.1's constraints):
    # `hook()` is abstract and `aws_hook_class` means nothing on a trigger, so a subclass that only names
    # its hook class cannot even be instantiated ("Can't instantiate abstract class ... hook"). Build the
    # hook as the newer provider does: from the parameters the trigger already serializes, so the deferred
    # half talks to AWS with the same connection, region, SSL verification and botocore config.
    class AwsBaseWaiterTrigger(_ProviderWaiterTrigger):
        """The provider's AwsBaseWaiterTrigger, with `hook()` built from the subclass's `aws_hook_class`."""

        aws_hook_class: type

        def hook(self) -> Any:
            hook_class = getattr(type(self), "aws_hook_class", None)
            if hook_class is None:
                raise AttributeError(
                    f"{type(self).__name__} must set the class attribute aws_hook_class (an AwsGenericHook "
                    "subclass) or override hook()"
                )
            return hook_class(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                config=self.botocore_config,
            )
else:
    # The provider's base builds the hook from `aws_hook_class` itself (and checks it at class creation).
    AwsBaseWaiterTrigger = _ProviderWaiterTrigger
