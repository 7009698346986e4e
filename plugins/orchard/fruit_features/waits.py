"""The run's EMR waits, paced and sized per run from its params instead of values fixed at parse time.

The poll delay is the one poll setting, the `poll_seconds` param (`orchard.params.poll_seconds`). The Amazon
provider takes the number of polls (`waiter_max_attempts`, `max_attempts`) only as a plain argument, and
the step sensor's delay (`poke_interval`) only as a number, both fixed when the DAG file is parsed. These
subclasses also render them from templates, so that a run's params decide them:
`orchard.waits.polls_template("params.step_timeout_minutes * 60")`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchard.compat import EmrAddStepsOperator, EmrStepSensor  # their triggers keep the task's region
from orchard.waits import polls_template

STEP_TIMEOUT_PARAM = "step_timeout_minutes"
STEP_TIMEOUT_MAX_MINUTES = 24 * 60  # the param's maximum; execution_timeout is sized from it
POLL_SECONDS = "{{ params.poll_seconds }}"  # the run's poll delay, for operator fields that render it


def step_attempts_template() -> str:
    """How many polls of the run's poll_seconds cover its step_timeout_minutes (rendered per run)."""
    return polls_template(f"params.{STEP_TIMEOUT_PARAM} * 60")


def attempts_template(limit: timedelta) -> str:
    """How many polls of the run's poll_seconds cover the fixed `limit` (rendered per run)."""
    return polls_template(str(int(limit.total_seconds())))


def as_attempts(value: object, field: str) -> int:
    """The rendered count as an int >= 1; anything else is a wiring error named with its field."""
    return _rendered_count(value, field, "polls", "the step wait needs at least one poll")


def as_seconds(value: object, field: str) -> int:
    """The rendered poll delay as an int >= 1 (the poll_seconds param's range)."""
    return _rendered_count(value, field, "seconds", "polls need at least one second between them")


def _rendered_count(value: object, field: str, unit: str, at_least_one: str) -> int:
    try:
        count = int(str(value).strip())
    except ValueError:
        raise ValueError(
            f"{field}={value!r} did not render to a number of {unit}: check the template"
        ) from None
    if count < 1:
        raise ValueError(f"{field}={count}: {at_least_one}")
    return count


def with_step_logs(operator: Any, trigger: Any, **flags: Any) -> Any:
    """The trigger a step wait defers with: the provider's EmrAddStepsTrigger / EmrStepSensorTrigger become
    orchard's, which also log the steps' stdout/stderr lines from the cluster's LogUri while the task waits
    (`orchard.triggers.emr_step`); they get the task's connection parameters (a 9.34.0 provider's lack them)
    and `flags` (the add-steps trigger's `end_in_trigger`). The provider's deferral itself (its first poll,
    its timeout) is kept."""
    from orchard.triggers import emr_step

    log_trigger = {
        "EmrAddStepsTrigger": emr_step.EmrAddStepsLogTrigger,
        "EmrStepSensorTrigger": emr_step.EmrStepLogTrigger,
    }.get(type(trigger).__name__)  # the provider's class itself (or compat's of that name), not a subclass
    if log_trigger is None:
        return trigger
    _, params = trigger.serialize()
    connection = emr_step.operator_connection(operator)
    return log_trigger(**{**params, **connection, **flags})


class EmrAddStepsSizedWait(EmrAddStepsOperator):
    """EmrAddStepsOperator whose `waiter_delay` and `waiter_max_attempts` may be templates (rendered, then
    made ints). Deferred, it waits with `EmrAddStepsLogTrigger`: the steps' stdout/stderr lines reach the
    task log while the task waits (`stream_logs`, default True), and once every step COMPLETED the trigger
    ends the task (`end_in_trigger`: the resume would only return the step ids the trigger delivers).
    Without `stream_logs` it waits with the provider's trigger and resumes.
    """

    template_fields = (*EmrAddStepsOperator.template_fields, "waiter_delay", "waiter_max_attempts")

    def __init__(self, *, stream_logs: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.stream_logs = stream_logs

    def defer(self, *, trigger, **kwargs):
        if self.stream_logs:
            from orchard.triggers.task_end import may_end_in_trigger

            trigger = with_step_logs(self, trigger, end_in_trigger=may_end_in_trigger(self))
        return super().defer(trigger=trigger, **kwargs)

    def execute(self, context):
        self.waiter_delay = as_seconds(self.waiter_delay, "waiter_delay")
        self.waiter_max_attempts = as_attempts(self.waiter_max_attempts, "waiter_max_attempts")
        return super().execute(context)


def only_step(step_ids: object) -> str:
    """The one step id of an add-steps XCom (EmrAddStepsOperator returns the list of the ids it added)."""
    ids = [step_ids] if isinstance(step_ids, str) else list(step_ids)
    if len(ids) != 1:
        raise ValueError(f"step_id: expected the one step the cluster was given, got {ids!r}")
    return ids[0]


class EmrStepSensorSizedWait(EmrStepSensor):
    """EmrStepSensor whose `max_attempts` may be a template, whose delay between polls may be given as
    `poll_seconds`, a template (rendered, then made the sensor's `poke_interval`), and whose `step_id` may
    be the add-steps task's XCom (a one-item list of ids: pass `add_steps.output`, no Jinja pull).
    Deferred, it waits with `EmrStepLogTrigger`: the step's stdout/stderr lines reach the task log as EMR
    archives them to the cluster's LogUri, while the task waits.

    :param poll_seconds: seconds between polls, e.g. "{{ params.poll_seconds }}" (templated); None keeps
        `poke_interval`.
    :param stream_logs: log the step's lines while deferred (default True).
    """

    template_fields = (*EmrStepSensor.template_fields, "max_attempts", "poll_seconds")

    def __init__(self, *, poll_seconds: int | str | None = None, stream_logs: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.poll_seconds = poll_seconds
        self.stream_logs = stream_logs

    def defer(self, *, trigger, **kwargs):
        if self.stream_logs:
            trigger = with_step_logs(self, trigger)
        return super().defer(trigger=trigger, **kwargs)

    def execute(self, context):
        if self.poll_seconds is not None:
            self.poke_interval = float(as_seconds(self.poll_seconds, "poll_seconds"))
        self.max_attempts = as_attempts(self.max_attempts, "max_attempts")
        self.step_id = only_step(self.step_id)
        return super().execute(context)
