"""orchard.fruit_features.waits: the EMR waits' delay and number of polls, rendered per run from its params."""

from __future__ import annotations

from datetime import timedelta

import jinja2
import pytest

from orchard.compat import EmrStepSensor
from orchard.fruit_features import waits
from orchard.waits import polls_covering


def render(template: str, **params) -> str:
    return jinja2.Template(template).render(params=params)


def test_a_step_wait_that_does_not_render_to_a_count_is_refused():
    from orchard.fruit_features.waits import as_attempts

    with pytest.raises(ValueError, match="did not render to a number of polls"):
        as_attempts("{{ params.step_timeout_minutes }}", "max_attempts")
    with pytest.raises(ValueError, match="at least one poll"):
        as_attempts("0", "max_attempts")


def test_a_poll_delay_that_does_not_render_to_seconds_is_refused():
    assert waits.as_seconds(" 2 ", "waiter_delay") == 2
    with pytest.raises(ValueError, match="waiter_delay=.*did not render to a number of seconds"):
        waits.as_seconds("{{ params.poll_seconds }}", "waiter_delay")
    with pytest.raises(ValueError, match="at least one second"):
        waits.as_seconds("0", "poll_seconds")


@pytest.mark.parametrize("poll", [1, 7, 30, 600])
def test_the_number_of_polls_covers_the_limit_at_the_runs_poll_seconds(poll):
    start_up = render(waits.attempts_template(timedelta(minutes=45)), poll_seconds=poll)
    # the template is orchard.waits' one formula, rendered per run: it agrees with polls_covering
    assert waits.as_attempts(start_up, "waiter_max_attempts") == polls_covering(45 * 60, poll)
    assert (polls_covering(45 * 60, poll) - 1) * poll >= 45 * 60  # the last poll comes after the limit
    step = render(waits.step_attempts_template(), step_timeout_minutes=240, poll_seconds=poll)
    assert waits.as_attempts(step, "max_attempts") == polls_covering(240 * 60, poll)
    assert render(waits.POLL_SECONDS, poll_seconds=poll) == str(poll)


def test_the_step_sensor_polls_at_its_rendered_poll_seconds(monkeypatch):
    """The provider's sensor takes its delay (poke_interval) only as a number fixed at parse time: the
    rendered poll_seconds becomes it, and the rendered count max_attempts, before the sensor's wait."""
    seen = {}
    monkeypatch.setattr(
        EmrStepSensor,
        "execute",
        lambda self, context: seen.update(delay=self.poke_interval, polls=self.max_attempts),
    )
    sensor = waits.EmrStepSensorSizedWait(
        task_id="wait",
        job_flow_id="j-1",
        step_id="s-1",
        poll_seconds=" 5",
        max_attempts="12",
        deferrable=True,
    )
    assert {"poll_seconds", "max_attempts"} <= set(sensor.template_fields)

    sensor.execute({})

    assert seen == {"delay": 5.0, "polls": 12}


def test_the_step_sensor_takes_the_add_steps_xcom_its_one_step_id(monkeypatch):
    """wait_for_extract gets extract's XCom (the list of ids AddJobFlowSteps returned), not a Jinja pull."""
    monkeypatch.setattr(EmrStepSensor, "execute", lambda self, context: self.step_id)
    sensor = waits.EmrStepSensorSizedWait(task_id="wait", job_flow_id="j-1", step_id=["s-1"], max_attempts=3)

    assert sensor.execute({}) == "s-1"
    assert waits.only_step("s-2") == "s-2"
    with pytest.raises(ValueError, match="expected the one step the cluster was given"):
        waits.only_step(["s-1", "s-2"])
