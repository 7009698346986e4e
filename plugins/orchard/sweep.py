"""The run's last task, behind the teardowns: a second line of defence against billable leftovers.

A teardown removes the run's resources by their deterministic orchard names whatever failed, but it is one
task: when it fails before its AWS calls (a worker lost, a bug, a retry budget spent) nothing else deletes
them. The pipelines that own long-lived billable resources end with `sweep_leftovers` (trigger_rule
all_done, downstream of every other task): it runs the teardowns' own find-and-delete code again, by name,
so each of its calls is one cheap Describe/List when the teardowns finished.

`finish_run` decides the sweep's state:
* it removed something: fail, naming what it removed and which teardown should have (the teardown did not
  finish: that is the bug to look at; the resources are gone now);
* nothing was left but a task of the run failed: fail with the run's causes. The sweep is the run's only
  leaf, and Airflow decides a run's state from its leaves alone (`DagRun._tis_for_dagrun_state`): an
  all_done leaf that succeeded would make a failed run green. This is Airflow's "watcher" pattern
  (https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/dags.html, trigger rules; the
  project's own system tests end with a watcher for the same reason). The message names the causes,
  which `orchard.run_results.failure_causes` reads from the tasks' real states, so the report and the
  run's note still name the task that failed first, never the sweep;
* nothing left, nothing failed: succeed.

Both failures are final (`AirflowFailException`: no retry). A retry would only find the resources already
removed and say the run failed again, after the task's retry delays (minutes of a failed run showing as
running); an AWS error during the sweep itself still retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException


class LeftoversSwept(AirflowFailException):
    """The sweep found and removed resources a teardown should have removed."""


class RunFailed(AirflowFailException):
    """Nothing billable was left, but a task of the run failed: the sweep, as the run's leaf, says so."""


def finish_run(swept: Mapping[str, Sequence[str]], causes: Any) -> str:
    """`swept`: teardown task id -> what the sweep removed in its place; `causes`: the run's failure causes
    (`run_results.failure_causes`, falsy when nothing failed). Raises as the module doc says."""
    found = {teardown: list(items) for teardown, items in swept.items() if items}
    if found:
        lines = [f"{teardown} did not finish: swept {', '.join(items)}" for teardown, items in found.items()]
        run = f" (the run failed at: {causes})" if causes else ""
        raise LeftoversSwept("; ".join(lines) + run)
    if causes:
        raise RunFailed(f"nothing billable left behind; the run failed at: {causes}")
    return "nothing left behind: every teardown had finished"
