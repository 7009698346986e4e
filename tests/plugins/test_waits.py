"""orchard.waits: the one formula that sizes every wait, in Python and rendered per run in Jinja."""

from __future__ import annotations

import jinja2
import pytest

from orchard.waits import polls_covering, polls_template


@pytest.mark.parametrize(("seconds", "poll", "polls"), [(60, 30, 3), (61, 30, 4), (8, 1, 9), (0, 5, 1)])
def test_polls_outlast_the_limit_plus_the_poll_that_sees_the_end(seconds, poll, polls):
    assert polls_covering(seconds, poll) == polls
    assert polls_covering(seconds, str(poll)) == polls  # a rendered template is text


@pytest.mark.parametrize("poll", [1, 2, 7, 30, 600])
@pytest.mark.parametrize("minutes", [1, 45, 240])
def test_the_template_renders_the_same_count(poll, minutes):
    rendered = jinja2.Template(polls_template("params.limit_minutes * 60")).render(
        params={"limit_minutes": minutes, "poll_seconds": poll}
    )
    assert int(rendered) == polls_covering(minutes * 60, poll)
