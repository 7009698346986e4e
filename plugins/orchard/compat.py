"""The one place for names whose home or behaviour differs between the Airflow / Amazon provider versions
orchard runs on: the versions it targets (requirements.txt: Airflow 3.3.2, apache-airflow-providers-amazon
9.39.0) and the newest Airflow 3 Amazon MWAA offers with the provider its constraints file pins
(compat/mwaa-3.3.1.txt: Airflow 3.3.1, apache-airflow-providers-amazon 9.34.0; `make compat` runs the DAG
integrity tests and an e2e test there).

DAGs and plugins import such names from here, never from a version-specific location; each fallback says
which version needs it. Light imports only: DAG files load this at parse time.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger as _ProviderWaiterTrigger

# EMR names resolve lazily (module __getattr__ below): DAGs that don't use EMR don't pay for its import.
_EMR_OPERATORS = ("EmrAddStepsOperator", "EmrCreateJobFlowOperator", "EmrTerminateJobFlowOperator")
_EMR_SENSORS = ("EmrStepSensor",)
_EMR_TRIGGERS = (
    "EmrAddStepsTrigger",
    "EmrCreateJobFlowTrigger",
    "EmrTerminateJobFlowTrigger",
    "EmrStepSensorTrigger",
)

__all__ = ["AwsBaseWaiterTrigger", *_EMR_OPERATORS, *_EMR_SENSORS, *_EMR_TRIGGERS]


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


def _emr_names() -> dict[str, Any]:
    """The EMR operators, sensor and their triggers orchard uses, as this provider version needs them."""
    from airflow.providers.amazon.aws.hooks.emr import EmrHook
    from airflow.providers.amazon.aws.operators import emr as operators
    from airflow.providers.amazon.aws.sensors import emr as sensors
    from airflow.providers.amazon.aws.triggers import emr as triggers

    names = {name: getattr(operators, name) for name in _EMR_OPERATORS}
    names.update({name: getattr(sensors, name) for name in _EMR_SENSORS})
    names.update({name: getattr(triggers, name) for name in _EMR_TRIGGERS})
    if "region_name" in inspect.signature(triggers.EmrStepSensorTrigger.__init__).parameters:
        return names  # the provider hands region, SSL verification and botocore config to its triggers

    # apache-airflow-providers-amazon 9.34.0 (MWAA 3.3.1's constraints): the deferrable EMR operators and
    # EmrStepSensor build their triggers without region_name / verify / botocore_config, and those triggers'
    # hook() is EmrHook(aws_conn_id) alone: the triggerer would poll the connection's default region, not
    # the region the task ran in (a cluster in another region: "ClusterId not found", or the wrong
    # cluster). Here each trigger takes those parameters (serialized with it, so they reach the triggerer)
    # and the operators pass theirs, as the provider orchard targets (9.39.0) does.
    class _RegionalTrigger:
        def __init__(
            self,
            *args: Any,
            region_name: str | None = None,
            verify: bool | str | None = None,
            botocore_config: dict | None = None,
            **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.region_name = region_name
            self.verify = verify
            self.botocore_config = botocore_config

        def hook(self) -> EmrHook:
            return EmrHook(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                config=self.botocore_config,
            )

    regional = {}
    for name in _EMR_TRIGGERS:
        provider_trigger = names[name]
        # module-level name and qualname: the triggerer re-imports a trigger by its class path
        names[name] = regional[provider_trigger] = _subclass(name, _RegionalTrigger, provider_trigger)

    class _HandsConnectionParamsToTrigger:
        def defer(self, *, trigger: Any, **kwargs: Any) -> Any:
            if type(trigger) in regional:
                _, params = trigger.serialize()
                trigger = regional[type(trigger)](
                    **{
                        **params,
                        "region_name": self.region_name,
                        "verify": self.verify,
                        "botocore_config": self.botocore_config,
                    }
                )
            return super().defer(trigger=trigger, **kwargs)

    for name in (*_EMR_OPERATORS, *_EMR_SENSORS):
        names[name] = _subclass(name, _HandsConnectionParamsToTrigger, names[name])
    return names


def _subclass(name: str, *bases: type) -> type:
    """A class of this module named `name` (its class path is orchard.compat.<name>), metaclass respected."""

    def body(namespace: dict) -> None:
        namespace.update(__module__=__name__, __qualname__=name)

    return types.new_class(name, bases, exec_body=body)


def __getattr__(name: str) -> Any:
    if name in (*_EMR_OPERATORS, *_EMR_SENSORS, *_EMR_TRIGGERS):
        globals().update(_emr_names())  # once: later lookups find the module attribute
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
