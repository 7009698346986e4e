"""The do-nothing twins benchmarks/airflow_overhead_floor.py runs beside each pipeline (issue 17.1): a twin
must have its pipeline's graph (task ids, groups, mapping, dependencies, trigger rules, teardowns) and its
tasks must defer once per planned sleep and hand back the sleeps' spans."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.dag_files import load_dag, load_dag_module

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _overhead_twin as twin  # noqa: E402

DAG_FILES = sorted((REPO / "dags").glob("*.py"))


def graph(dag) -> dict[str, tuple]:
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk.bases.branch import BranchMixIn
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    return {
        t.task_id: (
            sorted(t.upstream_task_ids),
            str(t.trigger_rule),
            t.is_setup,
            t.is_teardown,
            isinstance(t, MappedOperator),
            isinstance(t.task_group, MappedTaskGroup),
            isinstance(t, (BranchMixIn, ShortCircuitOperator)),  # a branch point
        )
        for t in dag.tasks
    }


def write_twin(real, tmp_path: Path, job_seconds: float = 3.0) -> Path:
    shapes = twin.dag_shape(real)
    plans = twin.default_plan(shapes, job_seconds, map_count=2)
    path = tmp_path / f"{twin.TWIN_PREFIX}{real.dag_id}.py"
    path.write_text(twin.twin_source(real, shapes, plans))
    return path


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_a_twin_has_its_pipelines_graph(tmp_path, path):
    real = load_dag(path)
    module = load_dag_module(write_twin(real, tmp_path))
    (copy,) = {t.dag for t in module.T.values()}
    assert copy.dag_id == twin.TWIN_PREFIX + real.dag_id
    assert graph(copy) == graph(real)


def test_a_twin_task_defers_once_per_planned_sleep_and_returns_the_spans(tmp_path):
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk.exceptions import TaskDeferred

    module = load_dag_module(write_twin(load_dag(REPO / "dags" / "edge_deployment.py"), tmp_path))
    task = module.T["compile"]
    task.sleeps = [[4.0, 6.0]]
    context = {"ti": SimpleNamespace(map_index=-1)}
    with pytest.raises(TaskDeferred) as first:
        task.execute(context)
    assert isinstance(first.value.trigger, DateTimeTrigger)
    start, end = first.value.kwargs["spans"][0]
    assert end - start == pytest.approx(4.0)
    assert first.value.trigger.moment == dt.datetime.fromtimestamp(end, dt.UTC)
    with pytest.raises(TaskDeferred) as second:
        task.resume(context, **first.value.kwargs, event=None)
    spans = second.value.kwargs["spans"]
    assert len(spans) == 2 and spans[1][1] - spans[1][0] == pytest.approx(6.0)
    assert task.resume(context, **second.value.kwargs, event=None) == spans


def test_a_twin_branch_point_follows_what_the_real_run_followed(tmp_path):
    real = load_dag(REPO / "dags" / "aerial_pretraining.py")
    shapes = twin.dag_shape(real)
    plans = twin.default_plan(shapes, 1.0, map_count=2)
    plans["promotion_gate"].follow = ["not_promoted"]
    path = tmp_path / "twin.py"
    path.write_text(twin.twin_source(real, shapes, plans))
    gate = load_dag_module(path).T["promotion_gate"]
    assert gate.choose_branch({}) == ["not_promoted"]
    followed = []
    gate.do_branch = lambda context, branches: followed.append(branches) or branches
    # its return value is read back as the twin's job spans: no spans, not the followed task ids
    assert gate.execute({}) == [] and followed == [["not_promoted"]]


def test_a_deferral_counts_the_job_seconds_inside_its_stretch():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from airflow_overhead import Sample
    from airflow_overhead_floor import deferrals

    key = ("d", "r", "t")
    states = ["running", "deferred", "deferred", "deferred", "running", "deferred", "deferred", "success"]
    samples = [Sample(100.0 + i, {key: s}) for i, s in enumerate(states)]
    # deferred 101-103 (+1 s of sampling) and 105-106; one job 100.5-103.5, one 105.2-110
    found = deferrals(samples, "d", "r", [(100.5, 103.5), (105.2, 110.0)])
    assert found == {"t": [pytest.approx(2.5), pytest.approx(1.8)]}


def test_a_tasks_seconds_outside_jobs_sum_its_map_indexes_and_skip_job_time():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from airflow_overhead import Sample
    from airflow_overhead_floor import task_outside

    run = [("d", "r", "evaluate"), ("d", "r", "probe[0]"), ("d", "r", "probe[1]")]
    other_run = ("d", "other", "evaluate")
    samples = [
        Sample(100.0, {run[0]: "running", other_run: "running"}),
        Sample(101.0, {run[1]: "running", run[2]: "running"}),
        Sample(102.0, {run[1]: "running", run[2]: "deferred"}),  # inside the job: not counted
        Sample(103.0, {run[0]: "queued", run[1]: "running"}),
    ]
    assert task_outside(samples, "d", "r", [(101.5, 102.5)]) == {"evaluate": 1.0, "probe": 3.0}


def test_the_task_report_ranks_tasks_by_how_far_the_real_run_is_above_its_twin():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from airflow_overhead import RunStats
    from airflow_overhead_floor import task_medians, task_report

    rows = [RunStats("d", f"r{i}", "success") for i in range(3)] + [RunStats("d", "r3", "failed")]
    per_task = {
        ("d", "r0"): {"a": 10.0, "b": 2.0},
        ("d", "r1"): {"a": 14.0},  # b never ran outside a job in this run: 0
        ("d", "r2"): {"a": 12.0, "b": 4.0},
        ("d", "r3"): {"a": 99.0},  # a failed run: left out
    }
    real = task_medians(rows, per_task)
    assert real == {"d": {"a": 12.0, "b": 2.0}}
    twin_id = f"{twin.TWIN_PREFIX}d"
    copy = task_medians([RunStats(twin_id, "t", "success")], {(twin_id, "t"): {"a": 2.0, "b": 2.0}})
    lines = task_report(real, copy).splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["a", "b"]
    assert lines[2].endswith("+10") and lines[3].endswith("+0")


def test_a_mapped_job_task_whose_operator_defaults_to_deferrable_defers_in_the_twin():
    """aerial's linear_probe (OrchardSageMakerTrainingOperator.partial(...).expand(...)): its operator sets
    deferrable=True in __init__, which partial() kwargs do not hold; --job-seconds twins must defer it."""
    real = load_dag(REPO / "dags" / "aerial_pretraining.py")
    shapes = {shape.task_id: shape for shape in twin.dag_shape(real)}
    assert shapes["linear_probe"].mapped and shapes["linear_probe"].deferrable
    assert shapes["pretrain"].deferrable and not shapes["evaluate"].deferrable
    assert twin.default_plan(list(shapes.values()), 3.0, map_count=2)["linear_probe"].sleeps == [[3.0], [3.0]]
    assert type(real.task_dict["linear_probe"]).__name__ == "MappedOperator" and len(real.tasks) == 14


def test_a_round_whose_demo_was_interrupted_stops_the_benchmark(monkeypatch):
    """run_demo catches Ctrl-C / SIGTERM, stops its stack and returns 130: the next round must not start a
    stack of its own (two stacks of one checkout share .airflow/demo.db, and a fresh one deletes it)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import airflow_overhead_floor as floor

    monkeypatch.setattr(floor.demo_mod, "run_demo", lambda *args, **kwargs: floor.DEMO_INTERRUPTED)
    args = SimpleNamespace(timeout=1.0, sandbox_port=0, port=0)
    with pytest.raises(KeyboardInterrupt):
        floor.run_round(["d"], None, args, lambda *_: None, {})
    monkeypatch.setattr(floor.demo_mod, "run_demo", lambda *args, **kwargs: 1)  # a failed run: next round
    assert floor.run_round(["d"], None, args, lambda *_: None, {}) == []
