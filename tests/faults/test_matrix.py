"""The fault matrix (issue 14): every pipeline × every task that calls AWS × a fault before / after its AWS
calls. Each cell: the run must end failed, and the sandbox must hold no billable resource afterwards.
Marked `faults` (run by `make faults`); the `faults_ci` cells are the sample `make test` runs."""

from __future__ import annotations

import os

import pytest

from tests.faults.matrix import run_cell
from tests.faults.pipelines import PIPELINES

# CI's sample: ORCHARD_FAULTS_CI_PIPELINE names the pipeline whose cells `make test` runs too (empty: none;
# docs/sandbox.md). pose_training by default, the cheapest matrix (14 cells): in make test's --dist loadfile,
# tests/faults/scheduling.py hands its cells out first, one by one, to both workers (docs/sandbox.md: "The fault matrix in CI").
CI_PIPELINE = os.environ.get("ORCHARD_FAULTS_CI_PIPELINE", "pose_training")


def _task_ids(pipeline) -> list[str]:
    """The DAG's tasks as the DAG file defines them now (so the matrix follows renamed or added tasks),
    minus those that make no AWS call of their own; the most upstream tasks first (ties: the later in the
    file first). A cell runs every task upstream of its fault, so the longest cells come first: spread over
    workers (tests/faults/scheduling.py, worksteal) they end together instead of one long cell ending last."""
    from tests.dag_files import load_dag

    tasks = [t for t in load_dag(pipeline.dag_file).tasks if t.task_id not in pipeline.no_aws]
    ranked = sorted(enumerate(tasks), key=lambda it: (len(it[1].get_flat_relative_ids(upstream=True)), it[0]))
    return [task.task_id for _, task in reversed(ranked)]


def _cells():
    for dag_id, pipeline in PIPELINES.items():
        # e2e too: a cell runs its DAG end to end on the sandbox (`-m "not e2e"` leaves the CI sample's out)
        marks = [pytest.mark.faults, pytest.mark.e2e] + (
            [pytest.mark.faults_ci] if dag_id == CI_PIPELINE else []
        )
        for task_id in _task_ids(pipeline):
            for when in ("before", "after"):
                yield pytest.param(dag_id, task_id, when, marks=marks, id=f"{dag_id}-{task_id}-{when}")


@pytest.mark.parametrize(("dag_id", "task_id", "when"), list(_cells()))
def test_cell(dag_id, task_id, when, aws, airflow_db, pipeline_role_for, monkeypatch):
    pipeline = PIPELINES[dag_id]
    pipeline_role_for(dag_id)

    cell = run_cell(pipeline, task_id, when, monkeypatch)

    assert not cell.error, cell.error
    assert cell.injected > 0, f"{task_id} never ran: the fault was not injected (failed: {cell.failed_tasks})"
    assert cell.state == "failed", f"a run with {task_id} failing {when} its AWS calls ended {cell.state}"
    assert cell.leftovers == [], f"left behind after {task_id} failed {when} its AWS calls: {cell.leftovers}"
