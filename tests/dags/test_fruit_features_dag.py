"""fruit_features wiring: the export is skippable, clusters always end, the scaling test is mapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags import integrity

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "fruit_features.py"


@pytest.fixture(scope="module")
def dag():
    [loaded] = integrity.load(DAG_FILE).dags
    return loaded


def test_an_already_exported_model_skips_only_the_export_job(dag):
    request, export, ready = (dag.get_task(t) for t in ("export_request", "export_model", "model_ready"))
    assert request.ignore_downstream_trigger_rules is False  # skip export_model, not everything after it
    assert export.downstream_task_ids == {"model_ready"} and ready.trigger_rule == "none_failed"


def test_every_cluster_is_terminated_whatever_fails(dag):
    terminate = dag.get_task("scaling_run.terminate_cluster")
    assert terminate.is_teardown and terminate.upstream_task_ids >= {"scaling_run.create_cluster"}
    assert "scaling_run.create_cluster" in {t.task_id for t in terminate.upstream_list if t.is_setup}


def test_the_scaling_test_maps_cluster_step_and_timing_per_node_count(dag):
    group = dag.task_group_dict["scaling_run"]
    assert {t.task_id for t in group} == {
        f"scaling_run.{name}"
        for name in ("create_cluster", "extract", "wait_for_extract", "record_timing", "terminate_cluster")
    }
    assert dag.get_task("check_output").upstream_task_ids >= {"scaling_run.record_timing"}


def test_the_form_defaults_follow_the_issue(dag):
    params = dag.params
    assert params["core_node_counts"] == [2] and params["region"] == "eu-west-3"
    assert params["feature_model"] == "mobilenet_v2" and params["emr_release"].startswith("emr-7.")
