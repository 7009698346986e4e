"""orchard.compat: the names that differ between the Amazon provider orchard targets (9.39.0) and the one
MWAA's newest Airflow 3 pins (9.34.0) behave the same on both. CI runs this on the first, `make compat` on
the second."""

from __future__ import annotations

import importlib
import inspect
from unittest import mock

import pytest
from airflow.providers.amazon.aws.triggers import emr as provider_emr_triggers
from airflow.sdk.exceptions import TaskDeferred

from orchard import compat
from orchard.hooks.labeling_job import LabelingJobHook
from orchard.hooks.neo import NeoHook
from orchard.triggers.labeling_job import SageMakerLabelingJobTrigger
from orchard.triggers.neo import NeoCompilationTrigger

REGION = "eu-west-3"  # not the sandbox's region: a trigger that forgets it would poll elsewhere
CONNECTION = {"region_name": REGION, "verify": False, "botocore_config": {"retries": {"max_attempts": 7}}}


def _in_the_triggerer(trigger):
    """Rebuild the trigger as the triggerer does: import its class path, call it with its kwargs."""
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _assert_hook_uses_connection(hook):
    assert hook.region_name == REGION
    assert hook.verify is False
    assert hook.config.retries == {"max_attempts": 7}


@pytest.mark.parametrize(
    ("trigger", "hook_class"),
    [
        (NeoCompilationTrigger(job_name="c-1", waiter_delay=5, waiter_max_attempts=3, **CONNECTION), NeoHook),
        (
            SageMakerLabelingJobTrigger(job_name="l-1", waiter_delay=5, waiter_max_attempts=3, **CONNECTION),
            LabelingJobHook,
        ),
    ],
)
def test_waiter_trigger_builds_its_hook_from_aws_hook_class(trigger, hook_class):
    """On 9.34.0 `hook()` is abstract: without orchard.compat these triggers cannot even be instantiated."""
    rebuilt = _in_the_triggerer(trigger)
    hook = rebuilt.hook()
    assert type(hook) is hook_class
    _assert_hook_uses_connection(hook)


def test_waiter_trigger_without_hook_class_is_refused_naming_the_fix():
    with pytest.raises(AttributeError, match="aws_hook_class"):

        class NoHookTrigger(compat.AwsBaseWaiterTrigger):
            pass

        NoHookTrigger(
            serialized_fields={},
            waiter_name="w",
            waiter_args={},
            failure_message="f",
            status_message="s",
            status_queries=[],
            return_value=None,
            waiter_delay=1,
            waiter_max_attempts=1,
            aws_conn_id=None,
        ).hook()


@pytest.mark.parametrize(
    ("name", "args"),
    [
        (
            "EmrAddStepsTrigger",
            {"job_flow_id": "j-1", "step_ids": ["s-1"], "waiter_delay": 5, "waiter_max_attempts": 3},
        ),
        ("EmrCreateJobFlowTrigger", {"job_flow_id": "j-1"}),
        ("EmrTerminateJobFlowTrigger", {"job_flow_id": "j-1"}),
        ("EmrStepSensorTrigger", {"job_flow_id": "j-1", "step_id": "s-1"}),
    ],
)
def test_emr_trigger_keeps_the_tasks_region_into_the_triggerer(name, args):
    trigger = getattr(compat, name)(**args, aws_conn_id="aws_default", **CONNECTION)
    _assert_hook_uses_connection(_in_the_triggerer(trigger).hook())


def test_emr_step_sensor_defers_with_the_tasks_region():
    sensor = compat.EmrStepSensor(
        task_id="wait",
        job_flow_id="j-1",
        step_id="s-1",
        deferrable=True,
        poke_interval=5,
        max_attempts=3,
        **CONNECTION,
    )
    with mock.patch.object(type(sensor), "poke", return_value=False), pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    _assert_hook_uses_connection(_in_the_triggerer(deferred.value.trigger).hook())


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("EmrStepLogTrigger", {"job_flow_id": "j-1", "step_id": "s-1"}),
        (
            "EmrAddStepsLogTrigger",
            {"job_flow_id": "j-1", "step_ids": ["s-1"], "waiter_delay": 5, "waiter_max_attempts": 3},
        ),
    ],
)
def test_emr_step_log_triggers_keep_the_tasks_region_into_the_triggerer(name, args):
    """orchard's step-log triggers are built on compat's EMR triggers: the region survives on 9.34.0 too."""
    from orchard.triggers import emr_step

    trigger = _in_the_triggerer(getattr(emr_step, name)(**args, aws_conn_id="aws_default", **CONNECTION))
    _assert_hook_uses_connection(trigger.hook())
    assert trigger.stream_logs is True


def test_fruit_step_sensor_defers_with_the_log_trigger_and_the_tasks_region():
    from orchard.fruit_features.waits import EmrStepSensorSizedWait

    sensor = EmrStepSensorSizedWait(
        task_id="wait", job_flow_id="j-1", step_id=["s-1"], deferrable=True, max_attempts="3", **CONNECTION
    )
    with mock.patch.object(type(sensor), "poke", return_value=False), pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert type(deferred.value.trigger).__name__ == "EmrStepLogTrigger"
    _assert_hook_uses_connection(_in_the_triggerer(deferred.value.trigger).hook())


_PROVIDER_HANDS_REGION = (
    "region_name" in inspect.signature(provider_emr_triggers.EmrStepSensorTrigger.__init__).parameters
)


@pytest.mark.skipif(
    _PROVIDER_HANDS_REGION,
    reason="this provider's EMR operators pass the region themselves "
    "(their own tests); orchard.compat then exports them unchanged",
)
@pytest.mark.parametrize(
    ("operator", "kwargs", "trigger"),
    [
        (
            "EmrAddStepsOperator",
            {"job_flow_id": "j-1"},
            lambda: provider_emr_triggers.EmrAddStepsTrigger(
                job_flow_id="j-1", step_ids=["s-1"], waiter_delay=5, waiter_max_attempts=3
            ),
        ),
        (
            "EmrCreateJobFlowOperator",
            {},
            lambda: provider_emr_triggers.EmrCreateJobFlowTrigger(job_flow_id="j-1"),
        ),
        (
            "EmrTerminateJobFlowOperator",
            {"job_flow_id": "j-1"},
            lambda: provider_emr_triggers.EmrTerminateJobFlowTrigger(job_flow_id="j-1"),
        ),
    ],
)
def test_emr_operator_hands_its_region_to_the_providers_trigger(operator, kwargs, trigger):
    """9.34.0's operators defer these region-less triggers: orchard.compat's subclasses add the task's."""
    op = getattr(compat, operator)(task_id="t", deferrable=True, **kwargs, **CONNECTION)
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=trigger(), method_name="execute_complete")
    _assert_hook_uses_connection(_in_the_triggerer(deferred.value.trigger).hook())
