"""How many polls a wait needs: the one formula for every wait orchard sizes (jobs, endpoints, labeling, EMR).

A wait must outlast the longest legal life of what it waits on (the job's own time limit plus the time AWS
takes to start it and upload its output), or the task would give up on a job that is still allowed to run.
Every operator that sizes a wait calls `polls_covering`; DAG templates that size it per run (the run's
`poll_seconds` param) use `polls_template`, the same formula in Jinja.
"""

from __future__ import annotations

import math


def polls_covering(seconds: float, poll_seconds: int | float | str) -> int:
    """Polls of `poll_seconds` (a rendered template is text) that outlast `seconds`, plus the one that sees
    the end."""
    return math.ceil(float(seconds) / max(float(poll_seconds), 1.0)) + 1


def polls_template(seconds: str) -> str:
    """`polls_covering` rendered per run: `seconds` is a Jinja expression over the run's params, such as
    "params.step_timeout_minutes * 60"; the poll delay is the run's `params.poll_seconds`."""
    return f"{{{{ (({seconds}) + params.poll_seconds - 1) // params.poll_seconds + 1 }}}}"
