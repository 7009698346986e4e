"""orchard.sweep.finish_run: the sweep fails naming what a teardown left, carries a failed run's state as
the run's only leaf, and succeeds only when nothing was left and nothing failed."""

from __future__ import annotations

import pytest

from orchard.run_results import FailureCauses
from orchard.sweep import LeftoversSwept, RunFailed, finish_run


def test_leftovers_fail_the_sweep_naming_them_and_the_teardown_that_should_have_removed_them():
    swept = {"delete_endpoint": ["endpoint e1", "model m1"], "stop_labeling_job": []}
    causes = FailureCauses(failed=("delete_endpoint",))
    with pytest.raises(LeftoversSwept) as raised:
        finish_run(swept, causes)
    message = str(raised.value)
    assert message.startswith("delete_endpoint did not finish: swept endpoint e1, model m1")
    assert "stop_labeling_job" not in message  # it left nothing
    assert "the run failed at: delete_endpoint" in message


def test_nothing_left_but_a_failed_task_fails_the_sweep_naming_the_runs_causes():
    causes = FailureCauses(failed=("invoke",), not_run=("collect_predictions",))
    with pytest.raises(RunFailed, match=r"nothing billable left behind; the run failed at: invoke \(not run"):
        finish_run({"delete_endpoint": []}, causes)


def test_nothing_left_and_nothing_failed_succeeds():
    assert "nothing left" in finish_run({"delete_endpoint": [], "stop_labeling_job": []}, FailureCauses())


def test_the_sweeps_verdicts_fail_the_task_without_a_retry():
    """A retry finds nothing more to remove and fails again after the retry delays: before, a failed
    edge_deployment run showed as running ~2 more minutes (two retries of the sweep) before it failed."""
    from airflow.sdk.exceptions import AirflowFailException

    for verdict in (LeftoversSwept, RunFailed):
        assert issubclass(verdict, AirflowFailException), verdict
