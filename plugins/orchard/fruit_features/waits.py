"""The Spark step's wait, sized per run from the `step_timeout_minutes` param instead of a fixed limit.

The Amazon provider takes the number of polls (`waiter_max_attempts`, `max_attempts`) only as a plain
argument, fixed when the DAG file is parsed. These subclasses also render it from a template, so that a
run's param decides it: `"{{ params.step_timeout_minutes * 60 // <poll seconds> + 1 }}"`.
"""

from __future__ import annotations

from orchard.compat import EmrAddStepsOperator, EmrStepSensor  # their triggers keep the task's region

STEP_TIMEOUT_PARAM = "step_timeout_minutes"
STEP_TIMEOUT_MAX_MINUTES = 24 * 60  # the param's maximum; execution_timeout is sized from it


def step_attempts_template(poll_seconds: int) -> str:
    """How many polls of `poll_seconds` cover the run's step_timeout_minutes (rendered per run)."""
    return f"{{{{ params.{STEP_TIMEOUT_PARAM} * 60 // {int(poll_seconds)} + 1 }}}}"


def as_attempts(value: object, field: str) -> int:
    """The rendered count as an int >= 1; anything else is a wiring error named with its field."""
    try:
        attempts = int(str(value).strip())
    except ValueError:
        raise ValueError(
            f"{field}={value!r} did not render to a number of polls: check the template"
        ) from None
    if attempts < 1:
        raise ValueError(f"{field}={attempts}: the step wait needs at least one poll")
    return attempts


class EmrAddStepsSizedWait(EmrAddStepsOperator):
    """EmrAddStepsOperator whose `waiter_max_attempts` may be a template (rendered, then made an int)."""

    template_fields = (*EmrAddStepsOperator.template_fields, "waiter_max_attempts")

    def execute(self, context):
        self.waiter_max_attempts = as_attempts(self.waiter_max_attempts, "waiter_max_attempts")
        return super().execute(context)


class EmrStepSensorSizedWait(EmrStepSensor):
    """EmrStepSensor whose `max_attempts` may be a template (rendered, then made an int)."""

    template_fields = (*EmrStepSensor.template_fields, "max_attempts")

    def execute(self, context):
        self.max_attempts = as_attempts(self.max_attempts, "max_attempts")
        return super().execute(context)
