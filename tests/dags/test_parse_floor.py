"""The provider-style twins benchmarks/dag_parse_time.py --floor parses next to each DAG file (issue 17.3):
a twin is a DAG of the file's size, so it must load and have the file's task count and params."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.dags import integrity

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _parse_floor  # noqa: E402

SHAPE = _parse_floor.DagShape(
    dag_id="sample",
    tasks=12,
    params={
        "bucket": {
            "value": "s3://b/k/",
            "description": "Where.",
            "schema": {"type": "string", "pattern": "^s3://"},
        },
        "count": {"value": 3, "description": None, "schema": {"type": ["null", "integer"], "maximum": 9}},
    },
    validates_params=True,
)


@pytest.mark.parametrize("with_params", [False, True])
def test_a_twin_has_the_files_task_count_and_params(tmp_path, with_params):
    path = _parse_floor.write_twin(SHAPE, tmp_path, with_params=with_params)
    loaded = integrity.load.__wrapped__(path)
    assert not loaded.import_errors, loaded.import_errors
    (dag,) = loaded.dags
    assert len(dag.task_dict) == SHAPE.tasks
    assert all(t.__class__.__module__.startswith("airflow.providers.amazon.") for t in dag.tasks)
    if with_params:
        assert {k: dag.params.get_param(k).schema for k in dag.params} == {
            k: spec["schema"] for k, spec in SHAPE.params.items()
        }
        assert dag.params.validate() == {"bucket": "s3://b/k/", "count": 3}
        assert dag.timetable.can_be_scheduled  # so Airflow validates them at parse, as for the file
    else:
        assert not dag.params


def test_the_shape_of_a_dag_file_is_read_in_a_child():
    shape = _parse_floor.shape_of(Path(__file__).resolve().parents[2] / "dags" / "pose_training.py")
    assert shape.dag_id == "pose_training" and shape.validates_params
    assert shape.tasks >= 7 and "project_uri" in shape.params
